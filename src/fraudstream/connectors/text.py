"""A bounded source of the lines of a text file (``read_text_file``)."""

from __future__ import annotations

from typing import Any

from fraudstream.connectors.base import Source, SourceReader

__all__ = ["TextLineSource"]


class TextLineSource(Source[str]):
    """Lines of a file without their line endings; position is the byte offset."""

    bounded = True
    max_parallelism = 1

    def __init__(self, path: str, encoding: str = "UTF-8") -> None:
        self.path = path
        self.encoding = encoding

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[str]:
        """A reader of the whole file."""
        return _TextReader(self.path, self.encoding)


class _TextReader(SourceReader[str]):
    def __init__(self, path: str, encoding: str) -> None:
        self._path = path
        self._encoding = encoding
        self._offset = 0
        self._handle: Any = None

    def poll(self, max_records: int) -> list[str] | None:
        if self._handle is None:
            self._handle = open(self._path, "rb")  # noqa: SIM115 - closed in close()
            self._handle.seek(self._offset)
        lines = []
        for _ in range(max_records):
            raw = self._handle.readline()
            if not raw:
                break
            self._offset += len(raw)
            lines.append(raw.decode(self._encoding).rstrip("\r\n"))
        return lines or None

    def snapshot_position(self) -> int:
        return self._offset

    def restore_position(self, position: Any) -> None:
        self._offset = int(position)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
