"""Sliding event-time windows of one rule and one key, updated incrementally.

The window of event ``e`` is the events of the key that arrived so far with event time
in ``[e.t - W, e.t]`` (DESIGN.md §2). :class:`RuleWindow` keeps the key's events sorted
by event time and, beside them, running aggregates of the *running window*
``[max_t - W, max_t]`` (``max_t`` the largest event time seen):

1. An event at or after ``max_t`` (the usual, in-order case, ties included) is appended;
   the running window's left edge moves right past events older than ``e.t - W``, each
   leaving the running aggregates once. SUM, COUNT, AVG and STDDEV use running sums,
   MIN and MAX a monotonic queue, COUNT_DISTINCT a value -> count map: amortized O(1)
   per event, plus the eviction below.
2. An out-of-order event (``e.t < max_t``, still on time for the watermark) is inserted
   at its place (binary search) and its window ``[e.t - W, e.t]`` excludes the later
   events that already arrived. Additive aggregates are the running ones corrected by
   the events between the two windows' edges, so the cost is proportional to the events
   within the event's lateness, not to the window; MIN, MAX and COUNT_DISTINCT of such
   an event scan its window in C (``min`` over a list slice).
3. :meth:`RuleWindow.evict` drops events that no on-time event can still need: with the
   watermark at ``w`` every later event has ``t > w``, so events with ``t <= w - W``
   are out of every future window. Storage is compacted in amortized O(1).

Memory is proportional to the events in the window (plus those within the watermark
bound), per rule and key.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from fraudstream.fraud.rules.model import Aggregator, Rule

__all__ = [
    "SUMMED_KINDS",
    "KeyWindows",
    "RuleWindow",
    "WindowResult",
    "kind_of",
    "single_event_aggregate",
]

#: (aggregate or None for an empty window, events in the window, window start, window end)
WindowResult = tuple[float | None, int, int, int]

_SUM, _AVG, _MIN, _MAX, _DISTINCT, _STDDEV = range(6)
_KIND = {
    Aggregator.SUM: _SUM,
    Aggregator.AVG: _AVG,
    Aggregator.MIN: _MIN,
    Aggregator.MAX: _MAX,
    Aggregator.COUNT_DISTINCT: _DISTINCT,
    Aggregator.STDDEV: _STDDEV,
}

#: Kinds whose aggregate is a running sum (SUM, AVG; COUNT fields are sums of 1.0).
SUMMED_KINDS = frozenset({_SUM, _AVG})


def kind_of(rule: Rule) -> int:
    """The aggregate kind code of a rule's windows (for :func:`single_event_aggregate`)."""
    return _KIND[rule.aggregator_function_type]


def single_event_aggregate(kind: int, value: Any) -> float:
    """The aggregate of a window holding one event, exactly as :class:`RuleWindow` computes it.

    A key's first event needs no window object: this is what ``RuleWindow.add`` would
    return for it (same arithmetic, so the same float).
    """
    if kind <= _AVG:
        total: float = 0.0 + value  # SUM: the running total from 0.0; AVG: that total / 1
        return total
    if kind == _STDDEV:
        total = 0.0 + value
        return math.sqrt(max(0.0, (0.0 + value * value) - total * total))
    if kind == _DISTINCT:
        return 1.0
    return float(value)


_NO_COUNTS: dict[Any, int] = {}  # shared, never written: kinds without distinct counts
_NO_QUEUE: list[tuple[int, Any]] = []  # shared, never written: kinds without a queue


def _first(item: tuple[int, Any]) -> int:
    return item[0]


class RuleWindow:
    """The events and running aggregates of one rule for one key."""

    __slots__ = (
        "distinct",
        "edge",
        "head",
        "kind",
        "last_alert",
        "left",
        "max_t",
        "mono",
        "mono_head",
        "rule_id",
        "signature",
        "sq",
        "timer",
        "times",
        "total",
        "values",
        "width",
    )

    def __init__(self, rule: Rule, signature: Any = None) -> None:
        self.kind = _KIND[rule.aggregator_function_type]
        self.width = rule.window_ms
        self.signature = signature if signature is not None else rule.collection_signature()
        self.last_alert: int | None = None
        self.rule_id = rule.rule_id
        #: the key's pending cleanup, when this window is all the key keeps (see KeyWindows)
        self.timer: int | None = None
        self.clear()

    def clear(self) -> None:
        """Forget every event (COUNT_WITH_RESET after an alert, CLEAR_STATE_ALL)."""
        self.times: list[int] = []
        self.values: list[Any] = []
        self.head = 0  # events before head are evicted, awaiting compaction
        self.left = 0  # first event of the running window
        #: times[left], kept by the in-order SUM / AVG path (its head is then not read);
        #: None: unknown, every other change to times or left resets it
        self.edge: int | None = None
        self.max_t: int | None = None
        self.total = 0.0
        self.sq = 0.0
        kind = self.kind
        self.distinct: dict[Any, int] = {} if kind == _DISTINCT else _NO_COUNTS
        # The monotonic queue of MIN / MAX: (time, value), front = the window's extreme.
        self.mono: list[tuple[int, Any]] = [] if kind in (_MIN, _MAX) else _NO_QUEUE
        self.mono_head = 0

    def __len__(self) -> int:
        return len(self.times) - self.head

    def __setstate__(self, state: Any) -> None:
        """Unpickle, windows of earlier versions included (slots they lacked get defaults)."""
        self.edge = None
        self.timer = None
        self.rule_id = None  # type: ignore[assignment]  # only one-rule keys read it
        _, slots = state
        for name, value in slots.items():
            setattr(self, name, value)

    def oldest(self) -> int | None:
        """The event time of the oldest stored event, or ``None`` when empty."""
        return self.times[self.head] if self.head < len(self.times) else None

    # -- running aggregates --------------------------------------------------------------------
    def _enter(self, value: Any) -> None:
        kind = self.kind
        if kind <= _AVG:
            self.total += value
        elif kind == _STDDEV:
            self.total += value
            self.sq += value * value
        elif kind == _DISTINCT:
            self.distinct[value] = self.distinct.get(value, 0) + 1

    def _leave(self, value: Any) -> None:
        kind = self.kind
        if kind <= _AVG:
            self.total -= value
        elif kind == _STDDEV:
            self.total -= value
            self.sq -= value * value
        elif kind == _DISTINCT:
            left = self.distinct[value] - 1
            if left:
                self.distinct[value] = left
            else:
                del self.distinct[value]

    def _mono_push(self, t: int, value: Any) -> None:
        """Append to the monotonic queue (front = window MIN, or MAX)."""
        mono = self.mono
        low = self.mono_head
        if self.kind == _MIN:
            while len(mono) > low and mono[-1][1] >= value:
                mono.pop()
        else:
            while len(mono) > low and mono[-1][1] <= value:
                mono.pop()
        mono.append((t, value))

    def _mono_insert(self, t: int, value: Any) -> None:
        """Insert an out-of-order event into the monotonic queue at its time."""
        mono = self.mono
        low = self.mono_head
        pos = bisect.bisect_right(mono, t, lo=low, key=_first)
        is_min = self.kind == _MIN
        if pos < len(mono):
            later = mono[pos][1]
            if (later <= value) if is_min else (later >= value):
                return  # a later event dominates it for every window that holds both
        start = pos
        while start > low and (
            (mono[start - 1][1] >= value) if is_min else (mono[start - 1][1] <= value)
        ):
            start -= 1
        mono[start:pos] = [(t, value)]

    def _mono_evict(self, start: int) -> None:
        mono = self.mono
        low = self.mono_head
        while low < len(mono) and mono[low][0] < start:
            low += 1
        if low > 64 and low * 2 > len(mono):
            del mono[:low]
            low = 0
        self.mono_head = low

    def _running(self, count: int) -> float | None:
        kind = self.kind
        if count == 0:
            return None
        if kind == _SUM:
            return self.total
        if kind == _AVG:
            return self.total / count
        if kind == _STDDEV:
            mean = self.total / count
            return math.sqrt(max(0.0, self.sq / count - mean * mean))
        if kind == _DISTINCT:
            return float(len(self.distinct))
        return float(self.mono[self.mono_head][1])

    # -- adding an event -----------------------------------------------------------------------
    def add(self, t: int, value: Any) -> WindowResult:
        """Add an event and return the aggregate of its window ``[t - W, t]``."""
        times = self.times
        width = self.width
        max_t = self.max_t
        if max_t is None or t >= max_t:
            kind = self.kind
            if kind <= _AVG:
                # 1a. In order, SUM / AVG / COUNT (the usual case): the steps of 1 inlined,
                # same arithmetic in the same order.
                times.append(t)
                self.values.append(value)
                self.max_t = t
                total = self.total + value
                start = t - width
                left = self.left
                edge = self.edge
                if edge is None:
                    # the event just appended is in the window: times[left] exists
                    edge = self.edge = times[left]
                if edge < start:
                    values = self.values
                    while times[left] < start:
                        total -= values[left]
                        left += 1
                    self.left = left
                    self.edge = times[left]
                self.total = total
                count = len(times) - left
                return (total if kind == _SUM else total / count), count, start, t
            # 1. In order: append, slide the running window's left edge.
            times.append(t)
            self.values.append(value)
            self.max_t = t
            self._enter(value)
            start = t - width
            left = self.left
            if times[left] < start:
                values = self.values
                kind = self.kind
                while times[left] < start:
                    if kind not in (_MIN, _MAX):
                        self._leave(values[left])
                    left += 1
                self.left = left
                self.edge = None
            if self.kind in (_MIN, _MAX):
                self._mono_push(t, value)
                self._mono_evict(start)
            count = len(times) - left
            return self._running(count), count, start, t
        return self._add_out_of_order(t, value, max_t)

    def _add_out_of_order(self, t: int, value: Any, max_t: int) -> WindowResult:
        # 2. Out of order: insert at its place; the event's window excludes later events.
        self.edge = None
        times = self.times
        values = self.values
        width = self.width
        pos = bisect.bisect_right(times, t, lo=self.head)
        times.insert(pos, t)
        values.insert(pos, value)
        running_start = max_t - width
        if t >= running_start:
            self._enter(value)
            if self.kind in (_MIN, _MAX):
                self._mono_insert(t, value)
        else:
            self.left += 1  # inserted before the running window
        start = t - width
        lo = bisect.bisect_left(times, start, lo=self.head, hi=pos + 1)
        hi = pos + 1  # bisect_right placed it after the events of equal time
        count = hi - lo
        kind = self.kind
        if kind in (_SUM, _AVG, _STDDEV):
            left = self.left
            if hi <= left:  # later than the whole window by more than W: sum it directly
                part = values[lo:hi]
                total = sum(part)
                sq = sum(v * v for v in part) if kind == _STDDEV else 0.0
            else:
                before = values[lo:left]
                after = values[hi:]
                total = self.total + sum(before) - sum(after)
                sq = 0.0
                if kind == _STDDEV:
                    sq = self.sq + sum(v * v for v in before) - sum(v * v for v in after)
            if kind == _SUM:
                return total, count, start, t
            if kind == _AVG:
                return total / count, count, start, t
            mean = total / count
            return math.sqrt(max(0.0, sq / count - mean * mean)), count, start, t
        part = values[lo:hi]
        if kind == _DISTINCT:
            return float(len(set(part))), count, start, t
        return float(min(part) if kind == _MIN else max(part)), count, start, t

    # -- cleanup -------------------------------------------------------------------------------
    def evict(self, watermark: int) -> None:
        """Drop events no on-time event can need any more (``t <= watermark - W``)."""
        cutoff = watermark - self.width
        times = self.times
        head = self.head
        if head >= len(times) or times[head] > cutoff:
            return
        self.edge = None
        values = self.values
        left = self.left
        kind = self.kind
        while head < len(times) and times[head] <= cutoff:
            if head >= left and kind not in (_MIN, _MAX):
                self._leave(values[head])
            head += 1
        self.left = max(left, head)
        if kind in (_MIN, _MAX):
            self._mono_evict(cutoff + 1)
        if head == len(times):
            self.clear()
            return
        if head > 64 and head * 2 > len(times):
            del times[:head]
            del values[:head]
            self.left -= head
            head = 0
        self.head = head


class KeyWindows:
    """Everything one key keeps: a window per rule, and its pending cleanup timer.

    A key of a grouping with one rule may keep just that rule's :class:`RuleWindow`
    (with its ``timer``): one object less to reach per event. :meth:`of` views either
    form as a ``KeyWindows``.
    """

    __slots__ = ("timer", "windows")

    def __init__(self) -> None:
        self.windows: dict[int, RuleWindow] = {}
        self.timer: int | None = None

    @staticmethod
    def of(window: RuleWindow) -> KeyWindows:
        """A one-rule key's window as a ``KeyWindows`` (sharing the window)."""
        keyed = KeyWindows()
        keyed.windows[window.rule_id] = window
        keyed.timer = window.timer
        return keyed

    def next_cleanup(self, cooldowns: dict[int, int]) -> int | None:
        """When the oldest stored event (or a cooldown) of some rule expires."""
        best: int | None = None
        for rule_id, window in self.windows.items():
            oldest = window.oldest()
            due = None if oldest is None else oldest + window.width
            if window.last_alert is not None:
                until = window.last_alert + cooldowns.get(rule_id, 0)
                due = until if due is None else min(due, until)
            if due is not None and (best is None or due < best):
                best = due
        return best

    def evict(self, watermark: int, cooldowns: dict[int, int]) -> None:
        """Evict aged events of every rule; drop rules with nothing left to remember."""
        for rule_id in list(self.windows):
            window = self.windows[rule_id]
            window.evict(watermark)
            if not len(window):
                last = window.last_alert
                if last is None or last + cooldowns.get(rule_id, 0) <= watermark:
                    del self.windows[rule_id]
