"""Live measurements of the demo and their Prometheus text form.

The engine thread records into these objects; the web thread reads them. Each is guarded
by its own lock and does O(1) work per recorded batch, so measuring never slows the job.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["LatencyWindow", "MetricSample", "RateMeter", "nearest_rank", "render_prometheus"]


class RateMeter:
    """Counts events and reports a total and a per-second rate over a sliding window.

    Args:
        window_s: how many seconds of history the rate is computed over.
        clock: monotonic seconds (injected for tests).
    """

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._total = 0
        # (second bucket, count) pairs, oldest first.
        self._buckets: deque[list[int]] = deque()

    def add(self, count: int = 1) -> None:
        """Record ``count`` events now."""
        second = int(self._clock() * 10)  # tenth-of-a-second buckets
        with self._lock:
            self._total += count
            if self._buckets and self._buckets[-1][0] == second:
                self._buckets[-1][1] += count
            else:
                self._buckets.append([second, count])
                self._trim(second)

    def _trim(self, now_bucket: int) -> None:
        oldest = now_bucket - int(self.window_s * 10)
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()

    @property
    def total(self) -> int:
        """Events recorded since start."""
        return self._total

    def per_second(self) -> float:
        """Events per second over the last ``window_s`` seconds."""
        now_bucket = int(self._clock() * 10)
        with self._lock:
            self._trim(now_bucket)
            count = sum(c for _, c in self._buckets)
        return count / self.window_s


def nearest_rank(ordered: Sequence[float], quantile: float) -> float | None:
    """The nearest-rank ``quantile`` of sorted values (``None`` for no values).

    That is the smallest value with at least that share of the values at or below it.
    """
    if not ordered:
        return None
    rank = math.ceil(quantile * len(ordered))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


class LatencyWindow:
    """Recent latency values (ms) in a bounded ring; percentiles over what it holds.

    Args:
        capacity: how many of the most recent values are kept.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._values: deque[float] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add_many(self, values: Iterable[float]) -> None:
        """Record latencies."""
        with self._lock:
            self._values.extend(values)

    def percentiles(self, *quantiles: float) -> list[float | None]:
        """Nearest-rank percentiles (``None`` when nothing was recorded)."""
        with self._lock:
            ordered = sorted(self._values)
        return [nearest_rank(ordered, q) for q in quantiles]

    def drain(self) -> list[float]:
        """Take and forget everything recorded so far (one chart point's worth)."""
        with self._lock:
            values = list(self._values)
            self._values.clear()
        return values


@dataclass(frozen=True)
class MetricSample:
    """One Prometheus metric with its help text, type and value."""

    name: str
    help: str
    kind: str  # counter | gauge
    value: float | None
    labels: tuple[tuple[str, str], ...] = ()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_prometheus(samples: Sequence[MetricSample]) -> str:
    """The Prometheus text exposition format (version 0.0.4) of ``samples``.

    Samples with no value (e.g. a latency before the first event) are left out, as
    Prometheus expects absent series rather than NaN placeholders.
    """
    lines: list[str] = []
    described: set[str] = set()
    for sample in samples:
        if sample.name not in described:
            lines.append(f"# HELP {sample.name} {sample.help}")
            lines.append(f"# TYPE {sample.name} {sample.kind}")
            described.add(sample.name)
        if sample.value is None:
            continue
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels)
        target = f"{sample.name}{{{labels}}}" if labels else sample.name
        lines.append(f"{target} {sample.value:.6g}")
    return "\n".join(lines) + "\n"
