"""A bounded load test: WebSocket clients (some never reading) do not slow the engine.

The full-size run (100 clients, 10,000 tx/s, 30 s) is ``./dev bench service_load``; this is
the same code with 20 clients at 5,000 tx/s over 2 s of engine work per run.

Other processes on a 2-core machine move single runs by more than 10 %, so quiet and
loaded runs alternate, up to three pairs, until one pair is within the bounds. An engine
that clients really slow down fails every pair.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from service_load import RunResult, compare, report


def within_bounds(quiet: RunResult, loaded: RunResult) -> list[str]:
    """What is out of bounds in a pair (nothing: the clients did not slow the engine)."""
    problems = []
    if loaded.ws_connected != 20:
        problems.append(f"{loaded.ws_connected} clients connected, not 20")
    if loaded.events_per_s < 0.9 * quiet.events_per_s:
        problems.append("throughput fell by more than 10 %")
    # Alert latency p99 is tens of ms; it gets an absolute allowance on top of the 10 %.
    if loaded.alert_p99_ms > 1.1 * quiet.alert_p99_ms + 50:
        problems.append("alert latency p99 rose by more than 10 % + 50 ms")
    if loaded.rss_growth_mb > quiet.rss_growth_mb + 50:
        problems.append("memory grew by 50 MB more than without clients")
    return problems


@pytest.mark.slow
def test_clients_do_not_slow_the_engine() -> None:
    attempts: list[str] = []
    for _ in range(3):
        quiet, loaded = compare(rate=5_000, seconds=2, clients=20, stuck=5)
        assert quiet.events_per_s > 3_000  # the engine kept up with the generator at all
        problems = within_bounds(quiet, loaded)
        print(report(quiet, loaded), problems)
        if not problems:
            return
        attempts.append(report(quiet, loaded) + "\n" + "; ".join(problems))
    pytest.fail("clients slowed the engine in every pair:\n\n" + "\n\n".join(attempts))
