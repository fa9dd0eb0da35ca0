"""``fraudstream job --engine flink``: the same job code on a local Apache Flink cluster.

The jobs run on both engines over the same generated input; their alerts must be equal
as multisets (the order between keys is not defined). The reverse alias that makes this
possible is unit-tested against a stand-in ``pyflink`` package, so that those tests need
no JVM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.runner import flink_python

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "generator:count=6000,seed=11"


def _job(
    args: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "job", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        check=False,
    )


def _control_rules(folder: Path) -> Path:
    path = folder / "rules.jsonl"
    rules = [
        {"ruleId": 3, "ruleState": "ACTIVE", "groupingKeyNames": ["beneficiaryId"],
         "aggregateFieldName": "paymentAmount", "aggregatorFunctionType": "SUM",
         "limitOperatorType": "GREATER_EQUAL", "limit": 10000000, "windowMinutes": 1440},
        {"ruleId": 9, "ruleState": "CONTROL", "controlType": "CLEAR_STATE_ALL"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(rule) + "\n" for rule in rules))
    return path


@pytest.fixture(scope="module")
def flink_env() -> dict[str, str]:
    python = flink_python()
    if python is None:
        pytest.skip(
            "Apache Flink is not installed: set FRAUDSTREAM_FLINK_PYTHON or create .venv-flink"
        )
    env = dict(os.environ)
    env["FRAUDSTREAM_FLINK_PYTHON"] = str(python)
    env.pop("COV_CORE_SOURCE", None)
    return env


@pytest.fixture(scope="module")
def flink_jobs(
    flink_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """The three jobs on Flink, two at a time (each starts a JVM)."""
    out = tmp_path_factory.mktemp("flink-jobs")
    runs = {
        "tutorial": ["tutorial", "--engine", "flink", "--source", SOURCE],
        "tutorial-timer": [
            "tutorial-timer", "--engine", "flink", "--source", SOURCE,
            "--sink", f"jsonl:{out / 'timer.jsonl'}",
        ],
        "rules": ["rules", "--engine", "flink", "--source", "generator:count=1500,seed=7"],
        "clear-state": [
            "rules", "--engine", "flink", "--source", "generator:count=300,seed=7",
            "--rules", f"jsonl:{_control_rules(out)}",
        ],
    }  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda args: _job(args, flink_env), runs.values())
        results = dict(zip(runs, done))
    timer_alerts = out / "timer.jsonl"
    results["tutorial-timer"].stdout = timer_alerts.read_text() if timer_alerts.exists() else ""
    return results


@pytest.mark.flink
@pytest.mark.timeout(900)  # the fixture starts three Flink jobs (JVMs); slow on a busy machine
@pytest.mark.parametrize(
    ("name", "source"),
    [("tutorial", SOURCE), ("tutorial-timer", SOURCE), ("rules", "generator:count=1500,seed=7")],
)
def test_job_on_flink_finds_what_the_embedded_engine_finds(
    name: str,
    source: str,
    flink_jobs: dict[str, subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    on_flink = flink_jobs[name]
    assert on_flink.returncode == 0, on_flink.stderr[-3000:]
    if name == "tutorial-timer":
        embedded = _job([name, "--source", source, "--sink", f"jsonl:{tmp_path / 'a.jsonl'}"])
        ours = (tmp_path / "a.jsonl").read_text().splitlines()
        assert all(json.loads(line)["accountIdStr"] for line in on_flink.stdout.splitlines())
    else:
        embedded = _job([name, "--source", source])
        ours = embedded.stdout.splitlines()
    assert embedded.returncode == 0, embedded.stderr
    assert len(ours) >= 3
    assert sorted(on_flink.stdout.splitlines()) == sorted(ours)


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_bad_records_are_reported_and_the_job_still_runs(
    flink_env: dict[str, str], tmp_path: Path
) -> None:
    good = {
        "transactionId": 1, "eventTime": 1_700_000_000_000, "payeeId": 3, "beneficiaryId": 4,
        "paymentAmount": 0.5, "paymentType": "CRD", "ingestionTimestamp": 1_700_000_000_000,
    }  # fmt: skip
    large = dict(good, transactionId=2, eventTime=1_700_000_000_001, paymentAmount=900.0)
    path = tmp_path / "tx.jsonl"
    path.write_text(f"{json.dumps(good)}\nnot json\n{json.dumps(large)}\n" + "\x00" * 10 + "\n")
    proc = _job(["tutorial", "--engine", "flink", "--source", f"jsonl:{path}"], flink_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == "Alert{id=3}\n"
    assert "not valid JSON" in proc.stderr


def test_unbounded_source_is_refused_before_flink_starts(tmp_path: Path) -> None:
    python = flink_python()
    if python is None:
        pytest.skip("Apache Flink is not installed")
    env = dict(os.environ, FRAUDSTREAM_FLINK_PYTHON=str(python))
    proc = _job(["tutorial", "--engine", "flink", "--source", "generator:rate=5"], env)
    assert proc.returncode == 2
    assert "never ends" in proc.stderr and proc.stdout == ""
    missing = tmp_path / "nope.jsonl"
    proc = _job(["tutorial", "--engine", "flink", "--source", f"jsonl:{missing}"], env)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_missing_flink_interpreter_is_a_usage_error(tmp_path: Path) -> None:
    env = dict(os.environ, FRAUDSTREAM_FLINK_PYTHON=str(tmp_path / "no-python"))
    proc = _job(["tutorial", "--engine", "flink"], env)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_restoring_a_fraudstream_checkpoint_on_flink_is_refused(tmp_path: Path) -> None:
    args = ["tutorial", "--engine", "flink", "--checkpoint-dir", str(tmp_path)]
    proc = _job([*args, "--from-checkpoint", "latest"])
    assert proc.returncode == 2
    assert "do not load into Flink" in proc.stderr


def _with_stand_in_pyflink(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where ``pyflink`` is a stand-in package (a seam of our own)."""
    for package in ("pyflink", "pyflink/common", "pyflink/datastream"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text(f"WHO = {package!r}\n")
    (tmp_path / "pyflink/datastream/functions.py").write_text(
        "class KeyedProcessFunction:\n    ENGINE = 'stand-in pyflink'\n"
    )
    (tmp_path / "pyflink/common/watermark_strategy.py").write_text("class WatermarkStrategy: ...\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT / 'src'}")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_reverse_alias_turns_job_imports_into_pyflink(tmp_path: Path) -> None:
    proc = _with_stand_in_pyflink(
        tmp_path,
        """
        import fraudstream.datastream.functions as before
        from fraudstream.flink import use_embedded, use_pyflink
        use_pyflink()
        from fraudstream.datastream.functions import KeyedProcessFunction
        from fraudstream.common.watermark_strategy import MAX_WATERMARK, WatermarkStrategy
        import pyflink.datastream.functions as real
        assert KeyedProcessFunction is real.KeyedProcessFunction, KeyedProcessFunction
        assert KeyedProcessFunction is not before.KeyedProcessFunction
        assert MAX_WATERMARK == 2**63 - 1
        try:
            from fraudstream.datastream.functions import RuntimeContext
        except ImportError as exc:
            print("refused:", exc)
        try:
            import fraudstream.datastream.nothing_like_this
        except ImportError as exc:
            print("refused:", exc)
        import fraudstream.fraud.transaction  # the rest of fraudstream is untouched
        use_embedded()
        from fraudstream.datastream.functions import KeyedProcessFunction as again
        assert again is not real.KeyedProcessFunction
        print(KeyedProcessFunction.ENGINE)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "stand-in pyflink"
    assert "RuntimeContext" in lines[0]
    assert "no PyFlink counterpart" in lines[1] and "nothing_like_this" in lines[1]


def test_flink_site_hook_installs_the_alias_at_start_up(tmp_path: Path) -> None:
    site = ROOT / "src" / "fraudstream" / "flink" / "_site"
    proc = _with_stand_in_pyflink(
        tmp_path,
        f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import sitecustomize  # what a Flink worker imports at start-up
        from fraudstream.datastream import WHO
        print(WHO)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "pyflink/datastream"


def test_driver_reads_bounded_inputs_with_fraudstream_connectors(tmp_path: Path) -> None:
    from fraudstream.exceptions import ConfigurationError
    from fraudstream.flink import driver

    records = driver.read_bounded("generator:count=1200,seed=4", "transactions")
    assert len(records) == 1200
    assert len({r.transaction_id for r in records}) == 1200
    with pytest.raises(ConfigurationError, match="never ends"):
        driver.read_bounded("generator:rate=10", "transactions")
    with pytest.raises(ConfigurationError, match="no such file"):
        driver.read_bounded(f"jsonl:{tmp_path / 'missing.jsonl'}", "transactions")


def test_driver_writes_alerts_with_fraudstream_sinks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudstream.flink import driver
    from fraudstream.fraud.tutorial import Alert

    alerts = [Alert(i, 1_700_000_000_000 + i, 900.0) for i in range(2500)]
    assert driver._write(iter(alerts[:2]), driver._writer("print")) == 2
    assert capsys.readouterr().out == "Alert{id=0}\nAlert{id=1}\n"
    target = tmp_path / "alerts.jsonl"
    assert driver._write(iter(alerts), driver._writer(f"jsonl:{target}")) == 2500
    lines = target.read_text().splitlines()
    assert len(lines) == 2500
    assert json.loads(lines[-1])["accountIdStr"] == "2499"


def test_driver_refuses_malformed_invocations(capsys: pytest.CaptureFixture[str]) -> None:
    from fraudstream.flink import driver

    assert driver.main([]) == 2
    assert "usage" in capsys.readouterr().err
    assert driver.main([json.dumps({"name": "nope"})]) == 2
    assert "unknown job 'nope'" in capsys.readouterr().err


@pytest.mark.flink
@pytest.mark.timeout(900)
def test_clear_state_all_fails_on_flink_naming_the_missing_api(
    flink_jobs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # Pins a known limit (docs/flink-deployment.md): PyFlink 2.3 has no
    # apply_to_keyed_state, which the rules job's CLEAR_STATE_ALL uses.
    proc = flink_jobs["clear-state"]
    assert proc.returncode == 1
    assert "apply_to_keyed_state" in proc.stderr.splitlines()[-1]


def test_driver_reports_the_python_error_inside_a_flink_failure() -> None:
    from fraudstream.flink import driver

    wrapped = RuntimeError(
        "An error occurred while calling o340.hasNext.\n"
        ": java.lang.RuntimeException: Failed to close remote bundle\n"
        "Traceback (most recent call last):\n"
        "AttributeError: 'Ctx' object has no attribute 'apply_to_keyed_state'\n"
        "\tat org.apache.flink.Foo(Foo.java:1)\n"
    )
    assert driver._root_cause(wrapped) == (
        "AttributeError: 'Ctx' object has no attribute 'apply_to_keyed_state'"
    )
    assert driver._root_cause(RuntimeError("\nplain failure")) == "plain failure"
    assert driver._root_cause(RuntimeError("")) == "RuntimeError"
