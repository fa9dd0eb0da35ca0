"""Sources and sinks that connect a running job to the rest of its own process.

The web service feeds rule changes into a running job through a :class:`QueueSource`
and receives alerts through a :class:`CallbackSink`. Both are thread-safe on the side
that the other thread uses (``put`` / the callback), and never block the engine's loop.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from fraudstream.connectors.base import Sink, SinkWriter, Source, SourceReader

__all__ = ["CallbackSink", "QueueSource"]

T = TypeVar("T")


class QueueSource(Source[T], Generic[T]):
    """An unbounded source whose records are ``put`` by another thread.

    It is read by one instance (like a collection) and ends after :meth:`close`, once
    everything put before has been read. Its position is the number of records read:
    records put into a queue are not replayable after a crash, so a job that must not
    lose them keeps them elsewhere too (the rules service keeps rules in SQLite and
    starts a restored job from the current rule set).
    """

    bounded = False
    max_parallelism = 1
    in_process = True

    def __init__(self, initial: Sequence[T] = ()) -> None:
        self._pending: deque[T] = deque(initial)
        self._lock = threading.Lock()
        self._closed = False

    def put(self, record: T) -> None:
        """Hand a record to the job (any thread)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("QueueSource is closed")
            self._pending.append(record)

    def close(self) -> None:
        """End the source once the records already put have been read."""
        with self._lock:
            self._closed = True

    def _drain(self, max_records: int) -> list[T] | None:
        with self._lock:
            if not self._pending:
                return None if self._closed else []
            count = min(max_records, len(self._pending))
            return [self._pending.popleft() for _ in range(count)]

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[T]:
        """The single reader."""
        return _QueueReader(self)


class _QueueReader(SourceReader[T], Generic[T]):
    def __init__(self, source: QueueSource[T]) -> None:
        self._source = source
        self._read = 0

    def poll(self, max_records: int) -> list[T] | None:
        records = self._source._drain(max_records)
        if records:
            self._read += len(records)
        return records

    def snapshot_position(self) -> int:
        return self._read

    def restore_position(self, position: Any) -> None:
        self._read = int(position)


class CallbackSink(Sink[T], Generic[T]):
    """Hands every batch of records to ``callback`` on the engine's thread.

    The callback must be quick and must not block (put into a bounded buffer, schedule
    onto an event loop); the engine waits for it.
    """

    in_process = True

    def __init__(self, callback: Callable[[Sequence[T]], None]) -> None:
        self.callback = callback

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[T]:
        """A writer that calls the callback."""
        return _CallbackWriter(self.callback)


class _CallbackWriter(SinkWriter[T], Generic[T]):
    def __init__(self, callback: Callable[[Sequence[T]], None]) -> None:
        self._callback = callback

    def write(self, values: Sequence[T]) -> None:
        self._callback(values)
