"""``fraudstream demo`` as a user runs it: a real process, real signals, real files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudstream.cli import main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoProcess:
    """``fraudstream demo`` in a subprocess; ``url`` once it answers."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fraudstream",
                "demo",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--rate",
                "100",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/api/health").json()["job"] == "RUNNING":
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                out, err = self.process.communicate()
                raise AssertionError(f"the demo did not start: {out}\n{err}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_starts_prints_url_and_token_and_stops_cleanly(data_dir: Path, sig: int) -> None:
    demo = DemoProcess(data_dir, "--token", "s3cret", "--checkpoint-interval", "200")
    rules = httpx.get(f"{demo.url}/api/rules").json()
    assert [r["ruleId"] for r in rules] == [1, 2, 3, 4]
    assert httpx.post(f"{demo.url}/api/clearState").status_code == 401
    assert (
        httpx.post(f"{demo.url}/api/clearState", headers={"X-Token": "s3cret"}).status_code == 200
    )
    code, out, err = demo.stop(sig)
    assert code == 0
    assert f"{demo.url}/#token=s3cret" in out
    assert "access token: s3cret" in out
    assert str(data_dir) in out
    assert "Traceback" not in err
    assert any(p.name.startswith("savepoint-") for p in (data_dir / "checkpoints").rglob("*"))


def test_a_restarted_demo_shows_the_same_rules_and_alerts(data_dir: Path) -> None:
    rule = {
        "ruleId": 31,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["paymentType"],
        "aggregateFieldName": "COUNT_FLINK",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER_EQUAL",
        "limit": 1,
        "windowMinutes": 1,
    }
    demo = DemoProcess(data_dir, env={"FRAUDSTREAM_TOKEN": "from-env"})
    auth = {"X-Token": "from-env"}
    assert httpx.post(f"{demo.url}/api/rules", json=rule, headers=auth).status_code == 201
    assert httpx.delete(f"{demo.url}/api/rules/2", headers=auth).status_code == 200
    deadline = time.monotonic() + 20
    while not httpx.get(f"{demo.url}/api/alerts", params={"ruleId": 31}).json()["items"]:
        assert time.monotonic() < deadline, "no alert of rule 31"
        time.sleep(0.05)
    demo.stop()

    again = DemoProcess(data_dir, env={"FRAUDSTREAM_TOKEN": "from-env"})
    try:
        assert [r["ruleId"] for r in httpx.get(f"{again.url}/api/rules").json()] == [1, 3, 4, 31]
        history = httpx.get(f"{again.url}/api/alerts", params={"ruleId": 31}).json()["items"]
        assert history
    finally:
        again.stop()


def test_a_random_token_is_made_when_none_is_given(data_dir: Path) -> None:
    demo = DemoProcess(data_dir, env={"FRAUDSTREAM_TOKEN": ""})
    code, out, _ = demo.stop()
    token = out.split("access token: ", 1)[1].split()[0]
    assert len(token) >= 16
    assert code == 0


def test_a_taken_port_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--port", str(port), "--data-dir", str(tmp_path)])
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--port", "0"], ["--port", "70000"], ["--kafka", "localhost:9092"], ["--rate", "-5"]],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(["demo", "--data-dir", str(tmp_path), *args]) == 2
    assert "fraudstream:" in capsys.readouterr().err


def test_after_a_crash_the_restored_job_follows_the_rule_book(data_dir: Path) -> None:
    rule = {
        "ruleId": 32,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["paymentType"],
        "aggregateFieldName": "COUNT_FLINK",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER_EQUAL",
        "limit": 1,
        "windowMinutes": 1,
    }
    auth = {"X-Token": "t"}
    demo = DemoProcess(data_dir, "--token", "t", "--checkpoint-interval", "100")
    httpx.post(f"{demo.url}/api/rules", json=rule, headers=auth)

    def newest_alert_of_32(url: str) -> Any:
        items = httpx.get(f"{url}/api/alerts", params={"ruleId": 32, "limit": 1}).json()["items"]
        return items[0]["triggeringEvent"]["transactionIdStr"] if items else None

    deadline = time.monotonic() + 20
    while newest_alert_of_32(demo.url) is None:  # the rule is active and in a checkpoint
        assert time.monotonic() < deadline
        time.sleep(0.05)
    seen = time.time()

    def checkpoint_after_seen() -> bool:
        folder = data_dir / "checkpoints"
        return any(p.stat().st_mtime > seen for p in folder.glob("chk-*"))

    while not checkpoint_after_seen():  # the job's checkpointed state holds rule 32 ACTIVE
        assert time.monotonic() < deadline
        time.sleep(0.05)
    httpx.post(f"{demo.url}/api/rules/32/pause", headers=auth)
    demo.process.kill()  # no final checkpoint: the latest one still has rule 32 ACTIVE
    demo.process.communicate()

    again = DemoProcess(data_dir, "--token", "t", "--checkpoint-interval", "100")
    try:
        assert httpx.get(f"{again.url}/api/rules/32").json()["ruleState"] == "PAUSE"
        last = newest_alert_of_32(again.url)
        start = httpx.get(f"{again.url}/api/generator").json()["emitted"]
        deadline = time.monotonic() + 20
        while httpx.get(f"{again.url}/api/generator").json()["emitted"] < start + 300:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert newest_alert_of_32(again.url) == last
    finally:
        again.stop()
