"""A source over an in-memory collection (``from_collection``), replayable by index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fraudstream.connectors.base import Source, SourceReader

__all__ = ["CollectionSource"]


class CollectionSource(Source[Any]):
    """Emits the elements of a list in order; read by a single instance, as in Flink."""

    bounded = True
    max_parallelism = 1

    def __init__(self, elements: Sequence[Any]) -> None:
        self.elements = list(elements)

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        """A reader over the whole collection."""
        return _CollectionReader(self.elements)


class _CollectionReader(SourceReader[Any]):
    def __init__(self, elements: list[Any]) -> None:
        self._elements = elements
        self._next = 0

    def poll(self, max_records: int) -> list[Any] | None:
        start = self._next
        if start >= len(self._elements):
            return None
        end = min(start + max_records, len(self._elements))
        self._next = end
        return self._elements[start:end]

    def snapshot_position(self) -> int:
        return self._next

    def restore_position(self, position: Any) -> None:
        self._next = int(position)
