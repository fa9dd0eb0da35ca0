"""Watermark strategies and timestamp assigners, as in ``pyflink.common.watermark_strategy``.

The generators follow Flink's built-ins: for bounded out-of-orderness ``B``, the
watermark after seeing a largest timestamp ``M`` is ``M - B - 1`` (so an event
with timestamp exactly ``M - B`` is still on time); monotonous timestamps are the
case ``B = 0``. With idleness, a source that has produced nothing for the idle
timeout (processing time) stops holding back the watermark of downstream
operators until it produces again.
"""

from __future__ import annotations

from typing import Any

from fraudstream.common.time import Duration

__all__ = ["TimestampAssigner", "WatermarkStrategy"]

#: Flink's Long.MIN_VALUE / MAX_VALUE, the watermark before any event and at end of input.
MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1


class TimestampAssigner:
    """Extracts the event time (ms) of a record; subclass and override ``extract_timestamp``."""

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        """The event time of ``value``; ``record_timestamp`` is the source's, if any."""
        raise NotImplementedError


class WatermarkStrategy:
    """How a stream derives timestamps and watermarks."""

    def __init__(self, out_of_orderness_ms: int | None) -> None:
        # None means "no watermarks": records keep their timestamps, no watermark is generated.
        self.out_of_orderness_ms = out_of_orderness_ms
        self.timestamp_assigner: TimestampAssigner | None = None
        self.idle_timeout_ms: int | None = None

    def _copy(self) -> WatermarkStrategy:
        other = WatermarkStrategy(self.out_of_orderness_ms)
        other.timestamp_assigner = self.timestamp_assigner
        other.idle_timeout_ms = self.idle_timeout_ms
        return other

    def with_timestamp_assigner(self, timestamp_assigner: TimestampAssigner) -> WatermarkStrategy:
        """This strategy, taking event times from ``timestamp_assigner``."""
        if not callable(getattr(timestamp_assigner, "extract_timestamp", None)):
            raise TypeError(
                f"{timestamp_assigner!r} is not a TimestampAssigner: "
                "it needs an extract_timestamp(value, record_timestamp) method"
            )
        other = self._copy()
        other.timestamp_assigner = timestamp_assigner
        return other

    def with_idleness(self, idle_timeout: Duration) -> WatermarkStrategy:
        """This strategy, marking the stream idle after ``idle_timeout`` without records."""
        if not isinstance(idle_timeout, Duration):
            raise TypeError(f"idle_timeout must be a Duration, got {idle_timeout!r}")
        if idle_timeout.millis <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout.millis} ms")
        other = self._copy()
        other.idle_timeout_ms = idle_timeout.millis
        return other

    def with_watermark_alignment(self, *args: Any, **kwargs: Any) -> WatermarkStrategy:
        """Accepted for compatibility; one process reads all sources in one loop, so aligned."""
        return self._copy()

    @staticmethod
    def for_monotonous_timestamps() -> WatermarkStrategy:
        """Timestamps never decrease: the watermark trails the largest timestamp by 1 ms."""
        return WatermarkStrategy(0)

    @staticmethod
    def for_bounded_out_of_orderness(max_out_of_orderness: Duration) -> WatermarkStrategy:
        """Events are at most ``max_out_of_orderness`` late."""
        if not isinstance(max_out_of_orderness, Duration):
            raise TypeError(
                f"max_out_of_orderness must be a Duration, got {max_out_of_orderness!r}"
            )
        if max_out_of_orderness.millis < 0:
            raise ValueError(
                f"max_out_of_orderness must not be negative, got {max_out_of_orderness.millis} ms"
            )
        return WatermarkStrategy(max_out_of_orderness.millis)

    @staticmethod
    def no_watermarks() -> WatermarkStrategy:
        """No watermarks (processing-time jobs); timestamps may still be assigned."""
        return WatermarkStrategy(None)
