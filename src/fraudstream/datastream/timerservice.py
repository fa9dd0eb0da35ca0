"""``TimerService``: the clocks and timers a keyed function can use."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["TimerService"]


class TimerService(ABC):
    """Read the current time and register timers for the current key.

    There is at most one timer per key, time domain and timestamp: registering the
    same one twice fires it once. Timers fire in timestamp order, event-time timers
    when the watermark reaches their timestamp, processing-time timers when the
    processing-time clock does.
    """

    @abstractmethod
    def current_processing_time(self) -> int:
        """The processing-time clock, ms since the epoch."""

    @abstractmethod
    def current_watermark(self) -> int:
        """The operator's current event-time watermark."""

    @abstractmethod
    def register_processing_time_timer(self, timestamp: int) -> None:
        """Fire ``on_timer`` for the current key when processing time reaches ``timestamp``."""

    @abstractmethod
    def register_event_time_timer(self, timestamp: int) -> None:
        """Fire ``on_timer`` for the current key when the watermark reaches ``timestamp``."""

    @abstractmethod
    def delete_processing_time_timer(self, timestamp: int) -> None:
        """Forget the current key's processing-time timer at ``timestamp``, if any."""

    @abstractmethod
    def delete_event_time_timer(self, timestamp: int) -> None:
        """Forget the current key's event-time timer at ``timestamp``, if any."""
