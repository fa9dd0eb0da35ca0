"""Processing-time clocks. Every clock the engine reads is injected, so tests never sleep."""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """A processing-time clock in milliseconds since the epoch."""

    def now_ms(self) -> int:
        """The current time."""
        ...

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` of this clock's time pass (used only when the job has nothing to do)."""
        ...


class SystemClock:
    """The machine's wall clock."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        return time.time_ns() // 1_000_000

    def wait(self, seconds: float) -> None:
        """Sleep for ``seconds``."""
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (``set``/``advance``), for tests that never sleep."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = int(start_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        """The clock's time."""
        return self._now

    def set(self, now_ms: int) -> None:
        """Move the clock to ``now_ms``; it never moves backwards."""
        with self._lock:
            if now_ms < self._now:
                raise ValueError(f"clock cannot go back from {self._now} to {now_ms}")
            self._now = int(now_ms)

    def advance(self, millis: int) -> None:
        """Move the clock forward by ``millis``."""
        if millis < 0:
            raise ValueError(f"cannot advance by a negative amount: {millis}")
        with self._lock:
            self._now += int(millis)

    def wait(self, seconds: float) -> None:
        """Yield to other threads briefly; only ``set``/``advance`` move this clock."""
        time.sleep(min(seconds, 0.0005))
