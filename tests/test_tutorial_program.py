"""The tutorial's PyFlink program runs unchanged through `fraudstream run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fraudstream.common import Types, WatermarkStrategy
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.tutorial import Alert, FraudDetector, TimedFraudDetector, build_tutorial_job
from fraudstream.testing import (
    AdvanceProcessingTime,
    CapturingSink,
    ManualClock,
    ScriptedSource,
)

TUTORIAL_DATA = [
    (1, 1000, 188.23),
    (2, 1001, 0.50),
    (2, 1002, 600.00),
    (3, 1003, 42.00),
    (1, 1004, 0.89),
    (1, 1005, 300.00),
    (4, 1006, 0.10),
    (4, 1007, 520.00),
    (3, 1008, 0.75),
    (3, 1009, 800.00),
]


def test_fixture_prints_exactly_the_three_alerts(shared_dir: Path) -> None:
    program = shared_dir / "fixtures" / "pyflink_tutorial_fraud_detection.py"
    proc = subprocess.run(
        [sys.executable, "-m", "fraudstream", "run", str(program)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Alert{id=2}\nAlert{id=4}\nAlert{id=3}\n"


def test_pyflink_is_not_installed_here() -> None:
    # The fixture above must run on fraudstream alone, not on a real PyFlink.
    proc = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('pyflink'))"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.strip() == "None"


def test_run_rejects_a_missing_program(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fraudstream", "run", str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no such program" in proc.stderr


def test_unsupported_pyflink_feature_fails_at_once(tmp_path: Path) -> None:
    program = tmp_path / "windows.py"
    program.write_text("from pyflink.table import StreamTableEnvironment\n")
    proc = subprocess.run(
        [sys.executable, "-m", "fraudstream", "run", str(program)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "pyflink.table" in proc.stderr and "not supported" in proc.stderr
    assert proc.stdout == ""


def test_our_detector_matches_the_tutorial() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    stream = env.from_collection(
        TUTORIAL_DATA, type_info=Types.TUPLE([Types.LONG(), Types.LONG(), Types.DOUBLE()])
    )
    alerts = list(build_tutorial_job(stream).execute_and_collect())
    assert [str(a) for a in alerts] == ["Alert{id=2}", "Alert{id=4}", "Alert{id=3}"]
    assert alerts[0] == Alert(2, 1002, 600.0)


def _timed_run(script: list[object]) -> list[str]:
    clock = ManualClock(1_000_000)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock)
    sink = CapturingSink()
    stream = env.from_source(ScriptedSource(script, clock), WatermarkStrategy.no_watermarks(), "tx")
    build_tutorial_job(stream, timer=True).sink_to(sink)
    env.execute()
    return [str(a) for a in sink.results]


def test_timer_variant_alerts_within_a_minute() -> None:
    assert _timed_run([(7, 1, 0.5), AdvanceProcessingTime(59_999), (7, 2, 900.0)]) == [
        "Alert{id=7}"
    ]


def test_timer_variant_forgets_the_small_transaction_after_a_minute() -> None:
    assert _timed_run([(7, 1, 0.5), AdvanceProcessingTime(60_000), (7, 2, 900.0)]) == []


def test_timer_variant_keys_are_independent() -> None:
    script = [
        (1, 1, 0.5),
        AdvanceProcessingTime(30_000),
        (2, 2, 0.2),
        AdvanceProcessingTime(30_000),
        (1, 3, 900.0),
        (2, 4, 900.0),
    ]
    assert _timed_run(script) == ["Alert{id=2}"]


@pytest.mark.parametrize("detector", [FraudDetector, TimedFraudDetector])
def test_detectors_use_only_the_public_api(detector: type) -> None:
    module = sys.modules[detector.__module__]
    source = Path(module.__file__ or "").read_text()
    assert "fraudstream.runtime" not in source
