"""Timer queues: at most one timer per (key, timestamp), fired in timestamp order."""

from __future__ import annotations

import heapq
from typing import Any

__all__ = ["TimerQueue"]


class TimerQueue:
    """The timers of one time domain of one keyed operator instance.

    A heap orders timers by timestamp (ties in registration order); a set holds the
    live ``(timestamp, key)`` pairs. Deleting a timer only removes it from the set;
    its heap entry is skipped when it reaches the top, so every operation is
    O(log n).
    """

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        self._live: set[tuple[int, Any]] = set()
        self._seq = 0

    def register(self, timestamp: int, key: Any) -> None:
        """Add the timer unless the key already has one at ``timestamp``."""
        entry = (timestamp, key)
        if entry in self._live:
            return
        self._live.add(entry)
        self._seq += 1
        heapq.heappush(self._heap, (timestamp, self._seq, key))

    def delete(self, timestamp: int, key: Any) -> None:
        """Forget the timer, if there is one."""
        self._live.discard((timestamp, key))

    def peek(self) -> int | None:
        """The earliest live timer's timestamp, or ``None``."""
        heap = self._heap
        while heap:
            ts, _, key = heap[0]
            if (ts, key) in self._live:
                return ts
            heapq.heappop(heap)
        return None

    def pop_due(self, up_to: int) -> tuple[int, Any] | None:
        """Remove and return the earliest live timer with timestamp ``<= up_to``."""
        heap = self._heap
        live = self._live
        while heap and heap[0][0] <= up_to:
            ts, _, key = heapq.heappop(heap)
            entry = (ts, key)
            if entry in live:
                live.discard(entry)
                return entry
        return None

    def __len__(self) -> int:
        return len(self._live)

    def keys(self) -> set[Any]:
        """Keys that have at least one live timer."""
        return {key for _, key in self._live}

    def snapshot(self) -> list[tuple[int, Any]]:
        """Live timers in firing order."""
        return sorted(self._live, key=lambda e: e[0])

    def restore(self, timers: list[tuple[int, Any]], keep: Any = None) -> None:
        """Add the given timers (those whose key ``keep`` accepts, when given)."""
        for ts, key in timers:
            if keep is None or keep(key):
                self.register(ts, key)

    def clear(self) -> None:
        """Drop every timer."""
        self._heap.clear()
        self._live.clear()
