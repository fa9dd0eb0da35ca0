"""The Kafka deployment end to end, against the real Tansu broker.

``fraudstream serve`` (here: its engine and app in this process) and ``fraudstream job
rules`` (a separate process) talk only through the topics: a rule posted to the service
reaches the job through the rules topic, and the job's alert comes back to the service
and to a WebSocket client through the alerts topic.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from fraudstream.service import create_app
from fraudstream.service.kafka import KafkaDemoEngine
from kafka_broker import KafkaBroker
from service_server import LiveServer

pytestmark = pytest.mark.kafka

TOKEN = "kafka-token"
EVERY_TX_RULE = {
    "ruleId": 77,
    "ruleState": "ACTIVE",
    "groupingKeyNames": ["paymentType"],
    "aggregateFieldName": "COUNT_FLINK",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": "GREATER_EQUAL",
    "limit": 1,
    "windowMinutes": 1,
}


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what or 'condition'} not met within {timeout} s")


@pytest.fixture
def deployment(
    kafka_broker: KafkaBroker, kafka_topic: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[LiveServer, KafkaDemoEngine]]:
    prefix = kafka_topic("svc") + "-"
    topics = {role: prefix + role for role in ("transactions", "rules", "alerts", "dead-letters")}
    engine = KafkaDemoEngine(kafka_broker.bootstrap, tmp_path / "serve", topics=topics, rate=50)
    with LiveServer(create_app(engine, TOKEN)) as server:
        bootstrap = kafka_broker.bootstrap
        job = subprocess.Popen(
            [
                sys.executable, "-m", "fraudstream", "job", "rules",
                "--source", f"kafka://{bootstrap}/{topics['transactions']}",
                "--rules", f"kafka://{bootstrap}/{topics['rules']}",
                "--sink", f"kafka://{bootstrap}/{topics['alerts']}",
                "--dead-letters", f"kafka://{bootstrap}/{topics['dead-letters']}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            yield server, engine
        finally:
            job.send_signal(signal.SIGTERM)
            try:
                job.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                job.kill()
                job.communicate()


def test_a_posted_rule_reaches_the_job_and_its_alert_comes_back(
    deployment: tuple[LiveServer, KafkaDemoEngine],
) -> None:
    server, _ = deployment
    with httpx.Client(base_url=server.url, headers={"X-Token": TOKEN}) as api:
        wait_for(lambda: api.get("/api/generator").json()["emitted"] > 0, what="transactions")
        assert [r["ruleId"] for r in api.get("/api/rules").json()] == [1, 2, 3, 4]
        with connect(f"{server.ws_url}/ws/alerts?token={TOKEN}") as ws:
            created = api.post("/api/rules", json=EVERY_TX_RULE)
            assert created.status_code == 201

            def alert_of_77_on_the_socket() -> bool:
                message = json.loads(ws.recv(timeout=60))
                return any(item["ruleId"] == 77 for item in message["items"])

            wait_for(alert_of_77_on_the_socket, what="an alert of rule 77 on /ws/alerts")
        stored = api.get("/api/alerts", params={"ruleId": 77}).json()["items"]
        assert stored
        assert stored[0]["ruleId"] == 77
        assert stored[0]["groupingKey"]["paymentType"] in {"CSH", "CRD"}
        assert api.get("/api/health").json()["job"] == "RUNNING"


def test_alerts_that_are_not_alerts_are_counted_not_stored(
    deployment: tuple[LiveServer, KafkaDemoEngine], kafka_producer: Any
) -> None:
    server, engine = deployment
    topic = engine.topics["alerts"]
    for body in (b"not json", b"[1,2]", b'{"ruleId": 1}', json.dumps({"x": "y" * 5000}).encode()):
        kafka_producer.produce(topic, value=body)
    kafka_producer.flush(10)
    wait_for(lambda: engine.refused_alerts >= 3, what="the refused records")
    with httpx.Client(base_url=server.url) as api:
        assert api.get("/api/alerts").json()["items"] == []
        assert "fraudstream_dead_letters_total" in api.get("/metrics").text


def test_the_serve_command_runs_against_the_broker_and_stops_cleanly(
    kafka_broker: KafkaBroker, kafka_topic: Callable[[str], str], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen(
        [
            sys.executable, "-m", "fraudstream", "serve", "--kafka", kafka_broker.bootstrap,
            "--port", str(port), "--data-dir", str(tmp_path), "--token", TOKEN,
            "--topic-prefix", kafka_topic("serve") + "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def healthy() -> bool:
            try:
                return bool(httpx.get(f"http://127.0.0.1:{port}/api/health").json()["rules"] == 4)
            except httpx.HTTPError:
                assert serve.poll() is None, serve.communicate()
                return False

        wait_for(healthy, what="fraudstream serve to answer")
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err
    assert f"fraudstream serve at http://127.0.0.1:{port}/#token={TOKEN}" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("bootstrap", ["nohost", "host:port", ":9092"])
def test_a_bad_broker_address_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bootstrap: str
) -> None:
    from fraudstream.cli import main

    assert main(["serve", "--kafka", bootstrap, "--data-dir", str(tmp_path)]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_the_jobs_dead_letters_are_counted_by_the_service(
    deployment: tuple[LiveServer, KafkaDemoEngine], kafka_producer: Any
) -> None:
    server, engine = deployment
    with httpx.Client(base_url=server.url) as api:
        wait_for(lambda: api.get("/api/health").json()["job"] == "RUNNING", what="the service")
        before = engine.dead_letters.total
        topic = engine.topics["transactions"]
        for body in (b"not json", b'{"transactionId": "x"}', b"\xff\xfe" * 100):
            kafka_producer.produce(topic, value=body)
        kafka_producer.flush(10)
        wait_for(lambda: engine.job_dead_letters >= 3, what="the job's dead letters")
        assert engine.dead_letters.total >= before + 3
        metrics = api.get("/metrics").text
        (line,) = [
            x for x in metrics.splitlines() if x.startswith("fraudstream_dead_letters_total")
        ]
        assert float(line.split()[-1]) >= before + 3
        assert api.get("/api/health").json()["deadLetters"] >= before + 3
