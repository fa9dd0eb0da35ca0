"""File sources: whole lines from a byte offset, decoded by role; bad lines to dead letters."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from fraudstream.connectors.base import DeadLetter, ReaderContext, Source, SourceReader
from fraudstream.connectors.codecs import (
    DEFAULT_MAX_RECORD_BYTES,
    CsvColumns,
    _csv_cells,
    decode_json_object,
    decode_transaction_csv,
    decode_transaction_json,
)
from fraudstream.connectors.deadletters import RecordCounters
from fraudstream.exceptions import ConfigurationError, InvalidRecordError, RuleValidationError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS

__all__ = ["CsvSource", "JsonLinesSource"]

#: Decodes one line (no line ending) into a record, or raises InvalidRecordError.
LineDecoder = Callable[[bytes], Any]
#: The event time (ms) of a decoded record, or raises InvalidRecordError.
TimeExtractor = Callable[[Any], int]


class _LineFileSource(Source[Any]):
    bounded = True
    max_parallelism = 1
    kind = "file"

    def __init__(
        self,
        path: str,
        *,
        role: str = "transactions",
        time_field: str | None = None,
        follow: bool = False,
        max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        if not os.path.isfile(path):
            what = "a directory, not a file" if os.path.isdir(path) else "no such file"
            raise ConfigurationError(f"{self.kind} source {path!r}: {what}")
        if max_bytes < 1:
            raise ConfigurationError(f"max-bytes must be >= 1, got {max_bytes}")
        self.path = path
        self.role = role
        self.follow = follow
        self.bounded = not follow
        self.max_bytes = max_bytes
        if time_field is None and role == "transactions":
            time_field = "eventTime"
        self.time_field = time_field
        if role == "transactions" and time_field not in (None, *TRANSACTION_FIELDS):
            raise ConfigurationError(
                f"time field {time_field!r} is not a transaction field; "
                f"expected one of {', '.join(TRANSACTION_FIELDS)}"
            )
        #: Good and bad lines read so far by this process's reader.
        self.counters = RecordCounters()

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        """The single reader of the file."""
        return _LineReader(self)

    def _decoder(self, header: bytes | None) -> LineDecoder:
        raise NotImplementedError

    def _has_header(self) -> bool:
        return False

    def _time_extractor(self) -> TimeExtractor | None:
        name = self.time_field
        if name is None:
            return None
        if self.role == "transactions":
            index = TRANSACTION_FIELDS[name]
            return lambda record: int(record[index])

        def from_mapping(record: Any) -> int:
            value = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
            if type(value) is str and value.isdigit():
                value = int(value)
            if type(value) is not int:
                raise InvalidRecordError(
                    f"time field {name!r} must be integer epoch milliseconds, got {value!r}"
                )
            return value

        return from_mapping


def _rule_decoder(max_bytes: int) -> LineDecoder:
    import importlib

    parse_rule = importlib.import_module("fraudstream.fraud.rules").parse_rule

    def decode(raw: bytes) -> Any:
        decode_json_object(raw, max_bytes, "rule")  # the same UTF-8 / JSON / size checks
        try:
            return parse_rule(raw)
        except RuleValidationError as exc:
            raise InvalidRecordError(str(exc)) from None

    return decode


class JsonLinesSource(_LineFileSource):
    """One JSON object per line: transactions, rules or plain dicts, by ``role``."""

    kind = "jsonl"

    def _decoder(self, header: bytes | None) -> LineDecoder:
        max_bytes = self.max_bytes
        if self.role == "transactions":
            return functools.partial(decode_transaction_json, max_bytes=max_bytes)
        if self.role == "rules":
            return _rule_decoder(max_bytes)
        return lambda raw: decode_json_object(raw, max_bytes)


class CsvSource(_LineFileSource):
    """Comma-separated rows under a header line (or in the transaction field order)."""

    kind = "csv"

    def __init__(self, path: str, *, header: bool = True, **options: Any) -> None:
        super().__init__(path, **options)
        self.header = header
        if self.role == "rules":
            raise ConfigurationError("rules are JSON: read them with jsonl:PATH")
        if header:
            with open(path, "rb") as handle:
                first = handle.readline(self.max_bytes + 2)
            if first.endswith(b"\n") or (first and not self.follow):
                self._decoder(first.rstrip(b"\r\n"))  # refuse a bad header before the job runs

    def _has_header(self) -> bool:
        return self.header

    def _decoder(self, header: bytes | None) -> LineDecoder:
        max_bytes = self.max_bytes
        if self.role == "transactions":
            try:
                columns = CsvColumns.from_header_line(header) if header is not None else None
            except InvalidRecordError as exc:
                raise ConfigurationError(f"CSV file {self.path!r}: {exc.reason}") from None
            return lambda raw: decode_transaction_csv(raw, columns, max_bytes)
        names = _csv_cells(header, max_bytes) if header is not None else None

        def row(raw: bytes) -> Any:
            cells = _csv_cells(raw, max_bytes)
            if names is None:
                return cells
            if len(cells) != len(names):
                raise InvalidRecordError(f"CSV row has {len(cells)} columns, expected {len(names)}")
            return dict(zip(names, cells))

        return row


class _LineReader(SourceReader[Any]):
    """Reads whole lines from a byte offset; bad ones become dead letters."""

    def __init__(self, source: _LineFileSource) -> None:
        self._source = source
        self._offset = 0
        self._handle: Any = None
        self._decode: LineDecoder | None = None
        #: Transactions carry their time at a fixed index: read it in bulk after the batch.
        self._time_index = (
            TRANSACTION_FIELDS[source.time_field]
            if source.role == "transactions" and source.time_field is not None
            else None
        )
        self._time = None if self._time_index is not None else source._time_extractor()
        self._timestamps: list[int] = []
        self._dead: Callable[[DeadLetter], None] = lambda letter: None
        self._name = f"{source.kind}:{source.path}"

    def open(self, context: ReaderContext) -> None:
        self._dead = context.dead_letter
        try:
            self._handle = open(self._source.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self._source.path!r}: {exc}") from exc
        header = None
        if self._source._has_header():
            header = self._handle.readline()
            if header.endswith(b"\n") or not self._source.follow:
                self._offset = len(header)
                header = header.rstrip(b"\r\n")
            else:
                header = None  # not yet written: read again on the first poll
        self._header_pending = self._source._has_header() and header is None
        if not self._header_pending:
            self._decode = self._source._decoder(header or None)

    def _read_header(self) -> bool:
        self._handle.seek(0)
        header = self._handle.readline()
        if not header.endswith(b"\n"):
            return False
        self._offset = max(self._offset, len(header))
        self._decode = self._source._decoder(header.rstrip(b"\r\n"))
        self._header_pending = False
        return True

    def poll(self, max_records: int) -> list[Any] | None:
        if self._header_pending and not self._read_header():
            return []
        handle = self._handle
        decode = self._decode
        assert decode is not None
        time_of = self._time
        limit = self._source.max_bytes
        follow = self._source.follow
        handle.seek(self._offset)
        offset = self._offset
        records: list[Any] = []
        timestamps: list[int] = []
        bad = 0
        ended = False
        while len(records) < max_records:
            line = handle.readline(limit + 2)
            if not line:
                ended = True
                break
            if not line.endswith(b"\n"):
                if len(line) > limit:  # an over-long line: skip to its end
                    size, complete = self._skip_rest(handle, len(line))
                    if not complete and follow:
                        ended = True
                        break
                    self._dead_letter(
                        line[:limit],
                        f"record is over the limit of {limit} bytes ({size} bytes or more)",
                        offset,
                    )
                    bad += 1
                    offset += size
                    continue
                if follow:  # a line still being written: wait for its newline
                    ended = True
                    break
            start = offset
            offset += len(line)
            raw = line.rstrip(b"\r\n")
            if not raw or raw.isspace():
                continue
            try:
                record = decode(raw)
                if time_of is not None:
                    timestamps.append(time_of(record))
            except InvalidRecordError as exc:
                self._dead_letter(raw, exc.reason, start)
                bad += 1
                continue
            except Exception as exc:  # a decoder bug must not stop the job: keep the record
                self._dead_letter(raw, f"cannot decode: {type(exc).__name__}: {exc}", start)
                bad += 1
                continue
            records.append(record)
        self._offset = offset
        index = self._time_index
        self._timestamps = timestamps if index is None else [r[index] for r in records]
        self._source.counters.add(len(records), bad)
        if records or bad:
            return records
        if ended and not follow:
            return None
        if follow and os.fstat(handle.fileno()).st_size < offset:
            raise ConfigurationError(
                f"{self._name} shrank below the read position {offset}: it was truncated or "
                "replaced; start a new job to read it from the beginning"
            )
        return []

    @staticmethod
    def _skip_rest(handle: Any, read: int) -> tuple[int, bool]:
        size = read
        while True:
            chunk = handle.readline(1 << 16)
            if not chunk:
                return size, False
            size += len(chunk)
            if chunk.endswith(b"\n"):
                return size, True

    def _dead_letter(self, raw: bytes, reason: str, offset: int) -> None:
        self._dead(DeadLetter(raw, reason, self._name, f"offset {offset}"))

    def timestamps(self) -> list[int] | None:
        if self._time is None and self._time_index is None:
            return None
        return self._timestamps

    def snapshot_position(self) -> int:
        return self._offset

    def restore_position(self, position: Any) -> None:
        self._offset = max(int(position), self._offset)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
