"""A sink that keeps what it receives, for assertions."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from fraudstream.connectors.base import Sink, SinkWriter, WriterContext

__all__ = ["CapturingSink"]


class CapturingSink(Sink[Any]):
    """Keeps records in :attr:`results`.

    Without checkpointing, records appear as they are written. With checkpointing, a
    record appears only when the checkpoint after it completes (or at end of input):
    exactly what an exactly-once sink would have published, so an aborted run's
    ``results`` plus its resumed run's equal one uninterrupted run's.

    Its writers run in the job's own process also when the job runs in worker processes
    (``in_process``), so :attr:`results` fills where the test reads it.
    """

    in_process = True

    def __init__(self) -> None:
        self.results: list[Any] = []
        self._lock = threading.Lock()
        self._committed: set[tuple[int, int, int]] = set()

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
        """A writer for one parallel instance."""
        return _CapturingWriter(self, subtask_index)

    def _publish(self, token: tuple[int, int, int], records: list[Any]) -> None:
        with self._lock:
            if token not in self._committed:  # idempotent commit
                self._committed.add(token)
                self.results.extend(records)


class _CapturingWriter(SinkWriter[Any]):
    _runs = 0

    def __init__(self, sink: CapturingSink, subtask_index: int) -> None:
        self._sink = sink
        self._subtask = subtask_index
        self._staged: list[Any] = []
        self._exactly_once = False
        _CapturingWriter._runs += 1
        self._run = _CapturingWriter._runs

    def open(self, context: WriterContext) -> None:
        self._exactly_once = context.exactly_once

    def write(self, values: Sequence[Any]) -> None:
        if self._exactly_once:
            self._staged.extend(values)
        else:
            with self._sink._lock:
                self._sink.results.extend(values)

    def prepare_commit(self, checkpoint_id: int) -> Any:
        staged, self._staged = self._staged, []
        return ((self._run, self._subtask, checkpoint_id), staged) if staged else None

    def commit(self, committables: Sequence[Any]) -> None:
        for token, records in committables:
            self._sink._publish(token, records)
