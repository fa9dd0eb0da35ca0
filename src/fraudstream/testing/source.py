"""A source that plays a script: records, watermarks, time advances, pauses, an abort."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fraudstream.connectors.base import Source, SourceReader
from fraudstream.exceptions import FraudstreamError
from fraudstream.runtime.clock import ManualClock

__all__ = [
    "Abort",
    "AbortedByScript",
    "AdvanceProcessingTime",
    "Pause",
    "ScriptedSource",
    "Timestamped",
    "Watermark",
]


@dataclass(frozen=True)
class Timestamped:
    """A record with its own event time (ms), as a source like Kafka would give it."""

    value: Any
    timestamp: int


@dataclass(frozen=True)
class Watermark:
    """Declare event time ``timestamp`` complete (the source emits this watermark)."""

    timestamp: int


@dataclass(frozen=True)
class AdvanceProcessingTime:
    """Move the source's manual clock forward by ``millis`` (timers then fire)."""

    millis: int


@dataclass(frozen=True)
class Pause:
    """Produce nothing until :meth:`ScriptedSource.resume` is called."""


@dataclass(frozen=True)
class Abort:
    """Fail the job here, as a crash would (the records before it were processed)."""


class AbortedByScript(FraudstreamError, RuntimeError):
    """Raised by a :class:`ScriptedSource` at an :class:`Abort` step."""


_CONTROL = (Watermark, AdvanceProcessingTime, Pause, Abort)


class ScriptedSource(Source[Any]):
    """Plays ``script`` in order; a single reader, positions are script indexes.

    Args:
        script: records and control steps (:class:`Watermark`, :class:`AdvanceProcessingTime`,
            :class:`Pause`, :class:`Abort`); records may be :class:`Timestamped`.
        clock: the manual clock :class:`AdvanceProcessingTime` moves; give the same clock
            to ``env.set_processing_time_clock``.
        unbounded: keep polling with nothing to emit after the script ends (until cancelled).
    """

    max_parallelism = 1

    def __init__(
        self,
        script: Iterable[Any] = (),
        clock: ManualClock | None = None,
        unbounded: bool = False,
    ) -> None:
        self.script = list(script)
        self.clock = clock or ManualClock()
        self.bounded = not unbounded
        self._resume = threading.Event()

    def resume(self) -> None:
        """Let a paused source continue."""
        self._resume.set()

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        """The reader playing the script."""
        return _ScriptReader(self)


class _ScriptReader(SourceReader[Any]):
    def __init__(self, source: ScriptedSource) -> None:
        self._source = source
        self._next = 0
        self._watermark: int | None = None
        self._timestamps: list[int] | None = None
        self._skip_abort = False

    def poll(self, max_records: int) -> list[Any] | None:
        script = self._source.script
        self._watermark = None
        self._timestamps = None
        if self._next >= len(script):
            return [] if not self._source.bounded else None
        values: list[Any] = []
        stamps: list[int] = []
        while self._next < len(script) and len(values) < max_records:
            step = script[self._next]
            if isinstance(step, _CONTROL):
                if values:
                    break  # emit the records before the control step first
                self._control(step)
                return []
            if isinstance(step, Timestamped):
                values.append(step.value)
                stamps.append(step.timestamp)
            else:
                values.append(step)
            self._next += 1
        if stamps:
            if len(stamps) != len(values):
                raise ValueError("a batch mixes Timestamped and plain records; stamp them all")
            self._timestamps = stamps
        return values

    def _control(self, step: Any) -> None:
        if isinstance(step, Watermark):
            self._watermark = step.timestamp
            self._next += 1
        elif isinstance(step, AdvanceProcessingTime):
            self._source.clock.advance(step.millis)
            self._next += 1
        elif isinstance(step, Pause):
            if self._source._resume.wait(timeout=0.001):
                self._source._resume.clear()
                self._next += 1
        elif isinstance(step, Abort):
            index = self._next
            self._next += 1
            if self._skip_abort:
                self._skip_abort = False  # this abort already stopped the run we resume
                return
            raise AbortedByScript(f"aborted by the script at step {index}")

    def emitted_watermark(self) -> int | None:
        return self._watermark

    def timestamps(self) -> list[int] | None:
        return self._timestamps

    def snapshot_position(self) -> int:
        return self._next

    def restore_position(self, position: Any) -> None:
        self._next = int(position)
        # The first abort after the restored position is the crash being recovered from.
        self._skip_abort = True
