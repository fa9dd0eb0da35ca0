"""What a run of the demo costs, seen from inside its process: CPU per thread, GC pauses.

The engine thread and the web (event-loop) thread share one interpreter lock, so every
millisecond the web thread computes is a millisecond the engine may wait: the web thread's
CPU time is the cost that WebSocket clients put on the engine. Garbage collections stop
every thread; their pauses land in the alert latency of whatever was in flight.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GcPauses", "ThreadClock", "engine_thread", "load_average", "rss_mb"]


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> float:
    """The machine's 1-minute load average (other processes make every number noisy)."""
    return os.getloadavg()[0]


def engine_thread() -> threading.Thread:
    """The thread running the demo's rules job (named by ``execute_async``)."""
    for thread in threading.enumerate():
        if thread.name.startswith("fraudstream-job-"):
            return thread
    raise RuntimeError("no running job thread")


class ThreadClock:
    """CPU seconds one thread has used since this object was made."""

    def __init__(self, thread: threading.Thread) -> None:
        if thread.ident is None:
            raise RuntimeError(f"thread {thread.name!r} has not started")
        self.ident = thread.ident
        self._clock = time.pthread_getcpuclockid(thread.ident)
        self._start = time.clock_gettime(self._clock)

    def seconds(self) -> float:
        """CPU seconds used so far."""
        return time.clock_gettime(self._clock) - self._start

    def seconds_besides(self, pauses: GcPauses) -> float:
        """CPU seconds used so far, less the garbage collections this thread ran."""
        return self.seconds() - pauses.ms_by_thread.get(self.ident, 0.0) / 1000


@dataclass
class GcPauses:
    """Garbage-collection pauses while installed: how many, their total and the longest.

    A collection runs in the thread whose allocation triggered it and is counted in that
    thread's CPU time, whatever it collects (mostly the engine's state): ``ms_by_thread``
    lets a thread's own work be told apart from the collections it happened to trigger.
    """

    count: int = 0
    oldest_generation: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    ms_by_thread: dict[int, float] = field(default_factory=dict)
    _started: float = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        self.count += 1
        self.total_ms += pause_ms
        self.max_ms = max(self.max_ms, pause_ms)
        thread = threading.get_ident()
        self.ms_by_thread[thread] = self.ms_by_thread.get(thread, 0.0) + pause_ms
        if info.get("generation") == 2:
            self.oldest_generation += 1
