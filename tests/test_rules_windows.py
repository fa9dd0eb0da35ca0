"""Incremental windows against a brute-force recomputation of every window."""

from __future__ import annotations

import math
import statistics
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.fraud.rules import Aggregator, parse_rule
from fraudstream.fraud.rules.windows import KeyWindows, RuleWindow

BOUND = 20_000


def make_rule(aggregator: Aggregator, window_minutes: int = 1) -> Any:
    return parse_rule(
        {
            "ruleId": 1,
            "ruleState": "ACTIVE",
            "groupingKeyNames": ["payeeId"],
            "aggregateFieldName": "paymentAmount",
            "aggregatorFunctionType": aggregator.value,
            "limitOperatorType": ">",
            "limit": 0,
            "windowMinutes": window_minutes,
        }
    )


def brute(aggregator: Aggregator, values: list[float]) -> float | None:
    if not values:
        return None
    if aggregator is Aggregator.SUM:
        return float(sum(values))
    if aggregator is Aggregator.AVG:
        return sum(values) / len(values)
    if aggregator is Aggregator.MIN:
        return float(min(values))
    if aggregator is Aggregator.MAX:
        return float(max(values))
    if aggregator is Aggregator.COUNT_DISTINCT:
        return float(len(set(values)))
    return float(statistics.pstdev(values))


# Steps: (time delta from the largest time so far, may be negative; value; evict?; reset?)
steps = st.lists(
    st.tuples(
        # A coarse grid of times: ties and events exactly on a window's edge are common.
        st.integers(min_value=-3, max_value=4).map(lambda k: k * 10_000),
        st.integers(min_value=0, max_value=20),
        st.booleans(),
        st.integers(min_value=0, max_value=30),
    ),
    max_size=120,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(Aggregator)), st.integers(min_value=1, max_value=3), steps)
def test_window_matches_brute_force(
    aggregator: Aggregator, minutes: int, script: list[tuple[int, int, bool, int]]
) -> None:
    rule = make_rule(aggregator, minutes)
    width = minutes * 60_000
    window = RuleWindow(rule)
    arrived: list[tuple[int, float]] = []
    max_t = 0
    watermark = -(2**63)
    for delta, value, evict, reset in script:
        t = max_t + delta
        if t <= watermark:
            continue  # late: the job routes it elsewhere
        if evict:
            window.evict(watermark)
        if reset == 0:
            window.clear()
            arrived = []
        arrived.append((t, float(value)))
        got, count, start, end = window.add(t, float(value))
        in_window = [v for (u, v) in arrived if t - width <= u <= t]
        expected = brute(aggregator, in_window)
        assert (start, end, count) == (t - width, t, len(in_window))
        assert got is not None and expected is not None
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9), (got, expected)
        max_t = max(max_t, t)
        watermark = max_t - BOUND - 1
    # Eviction keeps only what a future on-time event could need.
    window.evict(watermark)
    assert all(u > watermark - width for u in window.times[window.head :])


def test_state_shrinks_once_the_watermark_passes() -> None:
    window = RuleWindow(make_rule(Aggregator.SUM, 1))
    for t in range(0, 120_000, 1000):
        window.add(t, 1.0)
    assert len(window) == 120
    window.evict(119_000)
    assert len(window) == 60  # events after 59 000 ms may still be in a future window
    window.evict(10**9)
    assert len(window) == 0 and window.oldest() is None


def test_key_windows_cleanup_and_cooldown_memory() -> None:
    keyed = KeyWindows()
    narrow = RuleWindow(make_rule(Aggregator.SUM, 1))
    wide = RuleWindow(make_rule(Aggregator.MAX, 60))
    keyed.windows = {1: narrow, 2: wide}
    narrow.add(1000, 5.0)
    wide.add(1000, 5.0)
    assert keyed.next_cleanup({}) == 61_000
    keyed.evict(61_000, {})
    assert list(keyed.windows) == [2]
    wide.last_alert = 1000
    keyed.evict(3_601_000, {2: 10**9})
    assert list(keyed.windows) == [2]  # its cooldown is still running
    keyed.evict(3_601_000, {2: 0})
    assert keyed.windows == {}
    assert keyed.next_cleanup({}) is None


def test_running_sums_recover_after_long_runs() -> None:
    window = RuleWindow(make_rule(Aggregator.SUM, 1))
    for t in range(0, 10_000_000, 7_000):
        got, count, _, _ = window.add(t, 0.1)
        window.evict(t - 1)
    assert got is not None
    assert math.isclose(got, 0.1 * count, rel_tol=1e-9)
