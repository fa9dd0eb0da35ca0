"""JSON-lines and CSV file sinks, exactly once with checkpoints.

What the output file ``OUT`` holds:

- One *run* of a sink writes one output. ``OUT`` is replaced (truncated) when a fresh
  run first writes or commits; a job restored from a checkpoint continues the output of
  the run that took the checkpoint, so after ``kill -9`` and ``--from-checkpoint``
  ``OUT`` ends exactly as an uninterrupted run's would (with parallelism > 1, the same
  lines, possibly in another order between parallel writers).
- Without checkpoints, records are appended and flushed as they are written.
- With checkpoints, a writer keeps the records written since the last barrier in memory;
  at the barrier they are sealed into a *committable* that travels inside the
  checkpoint; once the checkpoint is complete the committable is appended to ``OUT``.

How a commit is made idempotent and crash-safe, under a lock file, with a commit log
``.OUT.commits`` beside ``OUT`` (one line per step):

1. read the log: the run that owns ``OUT``, the tokens already committed, and a begun
   but unfinished append (a crash in step 3);
2. undo an unfinished append by truncating ``OUT`` to where it began;
3. for each committable not yet in the log: log ``B token start``, append its bytes to
   ``OUT`` and fsync, log ``C token end`` and fsync. A token (writer id and checkpoint
   id) is committed at most once, so committing a restored checkpoint again is harmless.

The log is compacted when it grows long, keeping the newest tokens (a restored
checkpoint is always among the last few).
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudstream.connectors.base import Sink, SinkWriter, WriterContext
from fraudstream.connectors.codecs import _json_ready, to_json_bytes
from fraudstream.exceptions import ConfigurationError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writers of one process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["ConsoleSink", "CsvSink", "FileCommittable", "JsonLinesSink"]

_COMPACT_LINES = 20_000
_KEEP_TOKENS = 2_000


@dataclass(frozen=True)
class FileCommittable:
    """Bytes sealed at a checkpoint barrier, to be appended to the output once.

    Attributes:
        run: the run of the sink that wrote them (the output they belong to).
        token: unique per writer and checkpoint; the commit log's key.
        data: whole lines, ready to append.
        header: the CSV header to write first if the output is still empty.
    """

    run: str
    token: str
    data: bytes
    header: bytes = b""


class _CommitLog:
    """The state of ``OUT`` as its commit log tells it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run: str | None = None
        self.committed: dict[str, int] = {}
        self.open_begin: tuple[str, int] | None = None
        self.lines = 0

    def load(self) -> None:
        self.run, self.committed, self.open_begin, self.lines = None, {}, None, 0
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return
        for line in text.split("\n")[:-1]:  # a last line without newline was cut by a crash
            kind, _, rest = line.partition(" ")
            self.lines += 1
            if kind == "R":
                self.run, self.committed, self.open_begin = rest, {}, None
            elif kind == "B":
                token, _, start = rest.rpartition(" ")
                self.open_begin = (token, int(start))
            elif kind == "C":
                token, _, end = rest.rpartition(" ")
                self.committed[token] = int(end)
                self.open_begin = None
        if text and not text.endswith("\n"):
            os.truncate(self.path, text.rfind("\n") + 1)  # drop the cut line for good

    def append(self, line: str) -> None:
        with open(self.path, "a", encoding="ascii") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.lines += 1

    def reset(self, run: str) -> None:
        self._replace([f"R {run}"])
        self.run, self.committed, self.open_begin = run, {}, None

    def compact(self) -> None:
        kept = list(self.committed.items())[-_KEEP_TOKENS:]
        self._replace([f"R {self.run}"] + [f"C {token} {end}" for token, end in kept])
        self.committed = dict(kept)

    def _replace(self, lines: list[str]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self.lines = len(lines)


class _FileSink(Sink[Any]):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigurationError(f"file sink {str(self.path)!r} is a directory")
        parent = self.path.parent
        if not parent.is_dir():
            raise ConfigurationError(
                f"file sink {str(self.path)!r}: no such directory {str(parent)!r}"
            )
        if not os.access(parent, os.W_OK):
            raise ConfigurationError(f"file sink {str(self.path)!r}: directory is not writable")
        #: This sink object's run: a fresh output (see the module documentation).
        self.run = uuid.uuid4().hex

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
        """A writer for one parallel instance."""
        return _FileWriter(self)

    def encode(self, values: Sequence[Any], writer: _FileWriter) -> bytes:
        raise NotImplementedError

    def header(self, writer: _FileWriter) -> bytes:
        return b""


class JsonLinesSink(_FileSink):
    """One JSON object per line (:func:`~fraudstream.connectors.codecs.to_json_bytes`)."""

    def encode(self, values: Sequence[Any], writer: _FileWriter) -> bytes:
        """The lines of a batch."""
        return b"".join([to_json_bytes(v) + b"\n" for v in values])


class CsvSink(_FileSink):
    """A header line, then one row per record.

    Columns are the fields of the first record (``to_json_dict()`` of alerts, the wire
    names of transactions, the keys of dicts); nested values are written as JSON.
    """

    def encode(self, values: Sequence[Any], writer: _FileWriter) -> bytes:
        """The rows of a batch."""
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\n")
        for value in values:
            ready = _json_ready(value)
            if isinstance(ready, dict):
                if writer.columns is None:
                    writer.columns = list(ready)
                extra = set(ready) - set(writer.columns)
                if extra:
                    raise ValueError(
                        f"record has fields {sorted(extra)} that are not CSV columns "
                        f"{writer.columns}; write such records with jsonl:"
                    )
                row = [ready.get(name, "") for name in writer.columns]
            else:
                row = list(ready) if isinstance(ready, (list, tuple)) else [ready]
                if writer.columns is None:
                    writer.columns = [f"value{i}" for i in range(len(row))]
            out.writerow([_cell(cell) for cell in row])
        return buffer.getvalue().encode()

    def header(self, writer: _FileWriter) -> bytes:
        """The header of this writer's columns."""
        if writer.columns is None:
            return b""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(writer.columns)
        return buffer.getvalue().encode()


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"), default=_json_ready)
    if isinstance(value, float):
        return repr(value)
    return value


class _FileWriter(SinkWriter[Any]):
    def __init__(self, sink: _FileSink) -> None:
        self._sink = sink
        self._run = sink.run
        self._id = uuid.uuid4().hex[:16]
        self._exactly_once = False
        self._staged: list[bytes] = []
        self._prepared = False
        self._checked_run = False
        self._lock_fd: int | None = None
        path = sink.path
        self._log = _CommitLog(path.with_name(f".{path.name}.commits"))
        self._lock_path = path.with_name(f".{path.name}.lock")
        self.columns: list[str] | None = None

    def open(self, context: WriterContext) -> None:
        self._exactly_once = context.exactly_once
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        if context.restored and self._exactly_once:
            # A restored job continues the output of the run that took its checkpoint,
            # even when this writer has nothing of that run's to commit again: the run of
            # the checkpoint's committables (another writer commits them), else the run
            # that last committed (a checkpoint with nothing sealed).
            sealed = [c for c in context.restored_committables if isinstance(c, FileCommittable)]
            if sealed:
                self._run = sealed[-1].run
            else:
                with self._locked():
                    self._log.load()
                    if self._log.run is not None:
                        self._run = self._log.run
        if not self._exactly_once:  # no restore possible: the run's output starts now
            with self._locked():
                self._log.load()
                self._own_output(self._run)
            self._checked_run = True

    # -- locking -------------------------------------------------------------------------------
    def _locked(self) -> _Lock:
        assert self._lock_fd is not None, "writer is not open"
        return _Lock(self._lock_fd)

    def _own_output(self, run: str) -> None:
        """Make ``OUT`` belong to ``run``: a fresh run truncates it (caller holds the lock)."""
        if self._log.run != run:
            with open(self._sink.path, "wb"):
                pass
            self._log.reset(run)

    def _append(self, data: bytes) -> int:
        fd = os.open(self._sink.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._exactly_once:
                os.fsync(fd)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    # -- writing -------------------------------------------------------------------------------
    def write(self, values: Sequence[Any]) -> None:
        if not values:
            return
        data = self._sink.encode(values, self)
        if self._exactly_once:
            self._staged.append(data)
            return
        with self._locked():
            if not self._checked_run:
                self._log.load()
                self._own_output(self._run)
                self._checked_run = True
            path = self._sink.path
            if not path.exists() or path.stat().st_size == 0:
                data = self._sink.header(self) + data
            self._append(data)

    def prepare_commit(self, checkpoint_id: int) -> FileCommittable | None:
        if not self._exactly_once:
            return None
        self._prepared = True
        data = b"".join(self._staged)
        self._staged = []
        return FileCommittable(
            self._run, f"{self._id}-{checkpoint_id}", data, self._sink.header(self)
        )

    def commit(self, committables: Sequence[Any]) -> None:
        if not committables:
            return
        if not self._prepared:
            # Committing a restored checkpoint before writing anything: this run continues
            # the output of the run that took it.
            self._run = committables[-1].run
        with self._locked():
            log = self._log
            log.load()
            path = self._sink.path
            if log.open_begin is not None:  # a crash cut an append short: undo it
                if path.exists():
                    os.truncate(path, log.open_begin[1])
                log.open_begin = None
            for committable in committables:
                self._own_output(committable.run)
                if committable.token in log.committed or not committable.data:
                    continue
                start = os.path.getsize(path) if path.exists() else 0
                data = committable.data
                if start == 0:
                    data = committable.header + data
                log.append(f"B {committable.token} {start}")
                end = self._append(data)
                log.append(f"C {committable.token} {end}")
                log.committed[committable.token] = end
            if log.lines > _COMPACT_LINES:
                log.compact()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class _Lock:
    """An exclusive ``flock`` on the sink's lock file (parallel writers, other processes)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class ConsoleSink(Sink[Any]):
    """One JSON line per record on stdout (or stderr), flushed per batch; not transactional."""

    def __init__(self, stream: str = "stdout") -> None:
        if stream not in ("stdout", "stderr"):
            raise ConfigurationError(f"print writes to stdout or stderr, not {stream!r}")
        self.stream = stream

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
        """A writer to the console."""
        return _ConsoleWriter(self.stream)


class _ConsoleWriter(SinkWriter[Any]):
    def __init__(self, stream: str) -> None:
        self._stream = stream

    def write(self, values: Sequence[Any]) -> None:
        import sys

        out = sys.stdout if self._stream == "stdout" else sys.stderr
        out.write("".join(to_json_bytes(v).decode() + "\n" for v in values))
        out.flush()
