"""Durations and time units, as in ``pyflink.common.time``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Duration", "Instant", "Time"]


@dataclass(frozen=True, order=True)
class Duration:
    """A length of time in milliseconds (``pyflink.common.Duration``)."""

    millis: int

    @staticmethod
    def of_millis(millis: int) -> Duration:
        """A duration of ``millis`` milliseconds."""
        return Duration(int(millis))

    @staticmethod
    def of_seconds(seconds: float) -> Duration:
        """A duration of ``seconds`` seconds."""
        return Duration(int(seconds * 1000))

    @staticmethod
    def of_minutes(minutes: float) -> Duration:
        """A duration of ``minutes`` minutes."""
        return Duration(int(minutes * 60_000))

    @staticmethod
    def of_hours(hours: float) -> Duration:
        """A duration of ``hours`` hours."""
        return Duration(int(hours * 3_600_000))

    @staticmethod
    def of_days(days: float) -> Duration:
        """A duration of ``days`` days."""
        return Duration(int(days * 86_400_000))

    @staticmethod
    def of_nanos(nanos: int) -> Duration:
        """A duration of ``nanos`` nanoseconds, truncated to milliseconds."""
        return Duration(int(nanos) // 1_000_000)

    @staticmethod
    def zero() -> Duration:
        """The empty duration."""
        return Duration(0)

    def to_milliseconds(self) -> int:
        """This duration in milliseconds."""
        return self.millis


@dataclass(frozen=True, order=True)
class Time:
    """A time interval in milliseconds (``pyflink.common.Time``, used by ``StateTtlConfig``)."""

    millis: int

    @staticmethod
    def milliseconds(millis: int) -> Time:
        """An interval of ``millis`` milliseconds."""
        return Time(int(millis))

    @staticmethod
    def seconds(seconds: float) -> Time:
        """An interval of ``seconds`` seconds."""
        return Time(int(seconds * 1000))

    @staticmethod
    def minutes(minutes: float) -> Time:
        """An interval of ``minutes`` minutes."""
        return Time(int(minutes * 60_000))

    @staticmethod
    def hours(hours: float) -> Time:
        """An interval of ``hours`` hours."""
        return Time(int(hours * 3_600_000))

    @staticmethod
    def days(days: float) -> Time:
        """An interval of ``days`` days."""
        return Time(int(days * 86_400_000))

    def to_milliseconds(self) -> int:
        """This interval in milliseconds."""
        return self.millis


@dataclass(frozen=True, order=True)
class Instant:
    """A point in time, milliseconds since the epoch."""

    epoch_millis: int

    @staticmethod
    def of_epoch_milli(epoch_milli: int) -> Instant:
        """The instant ``epoch_milli`` ms after the epoch."""
        return Instant(int(epoch_milli))

    def to_epoch_milli(self) -> int:
        """Milliseconds since the epoch."""
        return self.epoch_millis
