"""What every keyed operator shares: its state backend, its timers and their checkpointing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fraudstream.datastream.time_domain import TimeDomain
from fraudstream.runtime.keygroups import assign_to_key_group, key_group_range
from fraudstream.runtime.operators.base import Operator
from fraudstream.runtime.operators.emit import BatchCollector
from fraudstream.runtime.timers import TimerQueue
from fraudstream.state.files import StateFile

if TYPE_CHECKING:  # the state package imports the datastream API, which imports this
    from fraudstream.state.base import KeyedStateBackend

__all__ = ["KeyedSupport", "create_backend"]


def create_backend(operator: Operator) -> KeyedStateBackend:
    """The state backend the job is configured with, for one keyed operator instance."""
    task = operator.task
    if task.state_backend == "rocksdb":
        from fraudstream.state.rocksdb import RocksDBKeyedStateBackend

        return RocksDBKeyedStateBackend(
            directory=task.state_dir,
            max_parallelism=task.max_parallelism,
            key_groups=key_group_range(task.subtask_index, task.max_parallelism, task.parallelism),
            clock_ms=task.clock_ms,
            snapshot_dir=task.snapshot_dir,
        )
    from fraudstream.state.memory import HeapKeyedStateBackend

    return HeapKeyedStateBackend(task.clock_ms)


class KeyedSupport(Operator):
    """Mixin for keyed operators: backend, event/processing-time timers, snapshots.

    Timers fire in this order when the watermark advances to ``w``:

    1. the operator's watermark becomes ``w`` (so ``current_watermark()`` reads ``w``);
    2. every event-time timer with timestamp ``<= w`` fires, earliest first, with keyed
       state scoped to the timer's key; timers registered meanwhile at ``<= w`` fire too;
    3. what the timers emitted is sent downstream, then the watermark ``w`` follows it.
    """

    def __init__(self) -> None:
        self.backend: KeyedStateBackend = None  # type: ignore[assignment]
        self.event_timers = TimerQueue()
        self.processing_timers = TimerQueue()
        self._restored: list[Any] = []

    def open_keyed(self) -> None:
        """Create the backend and load restored state into it."""
        self.backend = create_backend(self)
        keep = self.owns_key
        for snapshot in self._restored:
            state = snapshot["state"]
            if isinstance(state, StateFile):
                state = state.located_in(self.task.restore_dir or ".")
            self.backend.restore(state, keep)
            self.event_timers.restore(snapshot["event_timers"], keep)
            self.processing_timers.restore(snapshot["processing_timers"], keep)
        self._restored = []

    def backend_or_none(self) -> Any:
        """The keyed state backend."""
        return self.backend

    def close(self) -> None:
        """Close the operator, then its state backend."""
        try:
            super().close()
        finally:
            if self.backend is not None:
                self.backend.close()

    def owns_key(self, key: Any) -> bool:
        """Whether ``key`` belongs to this instance's key groups."""
        task = self.task
        if task.parallelism == 1:
            return True
        group = assign_to_key_group(key, task.max_parallelism)
        return group in key_group_range(task.subtask_index, task.max_parallelism, task.parallelism)

    def invoke_timer(self, timestamp: int, domain: TimeDomain, collector: BatchCollector) -> None:
        """Call the function's ``on_timer``; the key is already set."""
        raise NotImplementedError

    def advance_watermark(self, watermark: int) -> None:
        """Fire due event-time timers, then forward the watermark."""
        self._fire(self.event_timers, watermark, TimeDomain.EVENT_TIME)
        self.out.watermark(watermark)

    def next_processing_timer(self) -> int | None:
        """The earliest processing-time timer."""
        return self.processing_timers.peek()

    def fire_processing_timers(self, now: int) -> None:
        """Fire processing-time timers due at ``now``."""
        self._fire(self.processing_timers, now, TimeDomain.PROCESSING_TIME)

    def _fire(self, queue: TimerQueue, up_to: int, domain: TimeDomain) -> None:
        collector = BatchCollector()
        backend = self.backend
        fired = 0
        while True:
            due = queue.pop_due(up_to)
            if due is None:
                break
            backend.current_key = due[1]
            self.invoke_timer(due[0], domain, collector)
            fired += 1
            if fired % 1024 == 0:
                collector.flush(self.out)
        collector.flush(self.out)

    def snapshot_state(self) -> Any:
        """Keyed state and pending timers."""
        return {
            "state": self.backend.snapshot(),
            "event_timers": self.event_timers.snapshot(),
            "processing_timers": self.processing_timers.snapshot(),
        }

    def restore_state(self, state: Any) -> None:
        """Remember snapshots to load in ``open`` (several when scaling in)."""
        self._restored.extend(state if isinstance(state, list) else [state])
