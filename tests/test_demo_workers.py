"""The demo's rules job with its windows in worker processes.

The generator (its speed set from the web side), the rules queue and the sinks into the
engine run in this process; the windows run in forked workers. Rule changes, speed
changes, alerts, checkpoints and a restart must work as with one process.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudstream.cli import main
from fraudstream.exceptions import ConfigurationError
from fraudstream.service import DemoEngine
from test_service_cli import DemoProcess

EVERY_50_CRD = {
    "ruleId": 42,
    "ruleState": "ACTIVE",
    "groupingKeyNames": ["paymentType"],
    "aggregateFieldName": "COUNT_WITH_RESET_FLINK",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": ">=",
    "limit": 50,
    "windowMinutes": 60,
}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # polling the running job's progress, with a timeout
    raise AssertionError("condition not met in time")


def alerts_of(engine: DemoEngine, rule_id: int) -> int:
    return engine.alert_store.count(rule_id=rule_id)


def test_the_demo_runs_its_windows_in_worker_processes(tmp_path: Path) -> None:
    engine = DemoEngine(tmp_path, rate=3000, workers=2, checkpoint_interval_ms=200)
    engine.start()
    try:
        assert wait_for(lambda: len(multiprocessing.active_children()) >= 2)
        wait_for(lambda: engine.events.total > 500)
        # The default count rule (4) fires from the worker processes into the store.
        wait_for(lambda: alerts_of(engine, 4) > 0)
        assert engine.job_status() == "RUNNING"
        # A rule added at run time reaches every window instance.
        engine.add_rule(EVERY_50_CRD)
        wait_for(lambda: alerts_of(engine, 42) >= 3)
        # The generator runs in this process (its counter moves here), paused from here.
        engine.set_speed(0)
        assert engine.generator.paused
        wait_for(lambda: engine.events.total == engine.generator.emitted > 0)
        wait_for(lambda: engine.checkpoint_age_s() is not None)
        held = engine.events.total
        engine.set_speed(3000)
        wait_for(lambda: engine.events.total > held + 300)
        engine.stop()  # with a final savepoint, which driver and workers took part in
        before = alerts_of(engine, 42)
        assert engine.newest_snapshot() is not None
    finally:
        engine.close()
    assert engine.job_status() == "NOT_STARTED"
    assert wait_for(lambda: not multiprocessing.active_children(), timeout=15)
    # A restart from that savepoint runs in worker processes again.
    again = DemoEngine(tmp_path, rate=3000, workers=2, checkpoint_interval_ms=200)
    again.start()
    try:
        wait_for(lambda: alerts_of(again, 42) > before)
        assert again.job_status() == "RUNNING"
    finally:
        again.close()


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers: Any) -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        DemoEngine(rate=0, workers=workers)


def children_of(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux: every thread's children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found.update(int(child) for child in text.split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_the_demo_command_with_workers_serves_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo = DemoProcess(data_dir, "--workers", "2", "--checkpoint-interval", "200")
    try:
        assert len(children_of(demo.process.pid)) == 2
        health = wait_for(
            lambda: (h := httpx.get(f"{demo.url}/api/health").json())["alertsStored"] and h
        )
        assert health["job"] == "RUNNING"
    finally:
        code, _, err = demo.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in err
    assert any(p.name.startswith("savepoint-") for p in (data_dir / "checkpoints").rglob("*"))


def test_the_demo_command_refuses_a_negative_worker_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--workers", "-1", "--data-dir", str(tmp_path)]) == 2
    assert "--workers must be 0" in capsys.readouterr().err
