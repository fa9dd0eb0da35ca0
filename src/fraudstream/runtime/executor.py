"""Running a compiled plan in one worker: the single-threaded, pull-based loop.

Each round of :meth:`LocalExecutor.step`:

1. polls every live source once for a batch of up to ``batch_size`` records and pushes
   it through the chained operators (and so to the sinks) before the next poll;
2. fires processing-time timers that are due on the injected clock;
3. lets the checkpoint coordinator take a checkpoint if one is due: between rounds no
   record is in flight inside the worker, so a snapshot of every operator is consistent;
4. when no source produced anything, waits briefly on the clock (never past the next
   timer) instead of spinning.

A source that ends emits the final watermark (firing every pending event-time timer
downstream) and ends its channels; operators finish when all their inputs ended, and
the job is done when every source has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from fraudstream.runtime.clock import Clock
from fraudstream.runtime.operators.base import Operator
from fraudstream.runtime.plan import JobPlan

__all__ = ["CheckpointHook", "LocalExecutor", "fire_due_timers"]


def fire_due_timers(operators: Iterable[Operator], now: int) -> int | None:
    """Fire the processing-time timers due at ``now``; the next one due after, if any."""
    next_timer = None
    for operator in operators:
        due = operator.next_processing_timer()
        if due is not None:
            if due <= now:
                operator.fire_processing_timers(now)
                due = operator.next_processing_timer()
            if due is not None and (next_timer is None or due < next_timer):
                next_timer = due
    return next_timer


class CheckpointHook(Protocol):
    """Takes checkpoints of a worker's plan between rounds."""

    def maybe_checkpoint(self, plan: JobPlan, now_ms: int) -> None:
        """Take a checkpoint if one is due."""
        ...

    def on_finished(self, plan: JobPlan) -> None:
        """The job ended normally."""
        ...


class LocalExecutor:
    """Runs one worker's operators until every source has ended (or the job is cancelled)."""

    def __init__(
        self,
        plan: JobPlan,
        clock: Clock,
        batch_size: int = 1024,
        checkpoints: CheckpointHook | None = None,
        idle_wait_s: float = 0.001,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.batch_size = batch_size
        self.checkpoints = checkpoints
        self.idle_wait_s = idle_wait_s
        self.cancelled = False
        self._active = list(plan.sources)
        self._timed: list[Operator] = list(plan.operators)
        self._opened: list[Operator] = []
        self.on_round: Callable[[], None] | None = None

    def open(self) -> None:
        """Open operators, sinks first, so every output is ready before data flows."""
        for operator in reversed(self.plan.operators):
            operator.open()
            self._opened.append(operator)

    def step(self) -> bool:
        """One round; ``False`` once the job is done."""
        produced = 0
        batch_size = self.batch_size
        for source in list(self._active):
            count = source.poll(batch_size)
            if count < 0:
                self._active.remove(source)
            else:
                produced += count
        now = self.clock.now_ms()
        next_timer = fire_due_timers(self._timed, now)
        if self.checkpoints is not None:
            self.checkpoints.maybe_checkpoint(self.plan, now)
        if self.on_round is not None:
            self.on_round()
        if not self._active or self.cancelled:
            return False
        if produced == 0:
            wait = self.idle_wait_s
            if next_timer is not None:
                wait = max(0.0, min(wait, (next_timer - now) / 1000))
            self.clock.wait(wait)
        return True

    def close(self) -> None:
        """Close every opened operator, even after a failure (first error wins)."""
        first: BaseException | None = None
        for operator in self._opened:
            try:
                operator.close()
            except Exception as exc:  # keep closing the others
                first = first or exc
        self._opened = []
        if first is not None:
            raise first

    def run(self) -> None:
        """Open, run to the end, close."""
        self.open()
        try:
            while self.step():
                pass
            if self.checkpoints is not None and not self.cancelled:
                self.checkpoints.on_finished(self.plan)
        finally:
            self.close()
