"""``fraudstream job`` over Kafka topics on the real broker: results, and kill -9 + restore.

Alerts are compared with the same transactions run in-process (collection source,
capturing sink). Their dedupe key is ``(accountId, timestamp)``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fraudstream.connectors.kafka import create_topic, read_topic
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction
from fraudstream.fraud.tutorial import build_tutorial_job
from fraudstream.testing import CapturingSink
from kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka

Topic = Callable[[str], str]
AlertKey = tuple[int, int, float]


def transactions(count: int, seed: int, first_id: int = 0) -> list[Transaction]:
    """Payments of 60 accounts: 20% small, 20% large, so small-then-large happens often."""
    rng = random.Random(seed)
    out = []
    for i in range(first_id, first_id + count):
        roll = rng.random()
        amount = 0.5 if roll < 0.2 else 750.0 if roll < 0.4 else round(rng.uniform(1, 500), 2)
        payee = rng.randrange(60)
        out.append(
            Transaction(i, 1_700_000_000_000 + i * 10, payee, payee + 1000, amount, "CRD", 0)
        )
    return out


def produce_transactions(producer: Any, topic: str, txs: list[Transaction]) -> None:
    """Keyed by payee, so each account's transactions stay in order in one partition."""
    for tx in txs:
        value = json.dumps(dict(zip(TRANSACTION_FIELDS, tx))).encode()
        while True:
            try:
                producer.produce(topic, value=value, key=str(tx.payee_id).encode())
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(30) == 0


HOSTILE = [
    b"not json",
    b'{"transactionId": 1}',
    b'{"transactionId": "x", "eventTime": 1, "payeeId": 1, "beneficiaryId": 2, '
    b'"paymentAmount": 1.0, "paymentType": "CSH", "ingestionTimestamp": 0}',
    b'{"transactionId": 1, "eventTime": 1, "payeeId": 1, "beneficiaryId": 2, '
    b'"paymentAmount": -5, "paymentType": "CSH", "ingestionTimestamp": 0}',
    b"\xff\xfe",
    b"[]",
    b"",
]


def produce_raw(producer: Any, topic: str, values: list[bytes]) -> None:
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=str(i).encode())
    assert producer.flush(30) == 0


def expected_alerts(txs: list[Transaction]) -> Counter[AlertKey]:
    env = StreamExecutionEnvironment.get_execution_environment()
    sink = CapturingSink()
    stream = env.from_collection([(t.payee_id, t.event_time, t.payment_amount) for t in txs])
    build_tutorial_job(stream).sink_to(sink)
    env.execute("expected")
    return Counter((a.account_id, a.timestamp, a.amount) for a in sink.results)


def alerts_in(bootstrap: str, topic: str, **kwargs: Any) -> Counter[AlertKey]:
    out: Counter[AlertKey] = Counter()
    for record in read_topic(bootstrap, topic, **kwargs):
        alert = json.loads(record.value or b"")
        out[(alert["accountId"], alert["timestamp"], alert["amount"])] += 1
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fraudstream", "-v", "job", "tutorial", *args]


def test_tutorial_job_from_kafka_to_kafka_equals_in_process_run(
    kafka_broker: KafkaBroker, kafka_topic: Topic, kafka_producer: Any
) -> None:
    bootstrap = kafka_broker.bootstrap
    tx_topic, alert_topic = kafka_topic("transactions"), kafka_topic("alerts")
    create_topic(bootstrap, tx_topic, 4)
    txs = transactions(3000, seed=1)
    produce_transactions(kafka_producer, tx_topic, txs[:1500])
    # hostile records between the good ones go to the dead letters; the job keeps going
    produce_raw(kafka_producer, tx_topic, HOSTILE)
    produce_transactions(kafka_producer, tx_topic, txs[1500:])
    expected = expected_alerts(txs)
    assert sum(expected.values()) > 100

    done = subprocess.run(
        cli(
            "--source",
            f"kafka://{bootstrap}/{tx_topic}?bounded=true,quiet-ms=300",
            "--sink",
            f"kafka://{bootstrap}/{alert_topic}?partitions=2",
            "-p",
            "2",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert alerts_in(bootstrap, alert_topic, quiet_ms=300) == expected


def _checkpoints(directory: Path) -> list[int]:
    return sorted(int(p.name[4:]) for p in directory.glob("chk-*") if (p / "_metadata").exists())


def committed_offsets(bootstrap: str, topic: str) -> int:
    """Sum of the offsets the job committed to its consumer group after checkpoints."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fraudstream.{topic}"})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in found)


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling another process's progress


def test_kill_9_and_restore_from_checkpoint_loses_no_alert(
    kafka_broker: KafkaBroker, kafka_topic: Topic, kafka_producer: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    tx_topic, alert_topic = kafka_topic("transactions"), kafka_topic("alerts")
    create_topic(bootstrap, tx_topic, 4)
    create_topic(bootstrap, alert_topic, 2)
    batches = [transactions(1500, seed=s, first_id=s * 1500) for s in range(6)]
    expected = expected_alerts([tx for batch in batches for tx in batch])
    checkpoints = tmp_path / "checkpoints"
    sink_spec = f"kafka://{bootstrap}/{alert_topic}"
    common = ["--sink", sink_spec, "-p", "2", "--checkpoint-dir", str(checkpoints)]
    common += ["--checkpoint-interval", "100"]

    produce_transactions(kafka_producer, tx_topic, batches[0][:500])
    log = open(tmp_path / "first.log", "wb")  # noqa: SIM115 - closed below
    first = subprocess.Popen(
        cli("--source", f"kafka://{bootstrap}/{tx_topic}", *common),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # a checkpoint covers the first 500 (its offsets reach the consumer group)
        _wait_for(lambda: committed_offsets(bootstrap, tx_topic) >= 500, "a checkpoint")
        # keep the job busy, and kill it in the middle of the stream
        rest = [tx for batch in batches[:4] for tx in batch][500:]
        for start in range(0, len(rest), 250):
            produce_transactions(kafka_producer, tx_topic, rest[start : start + 250])
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        log.close()
    before_restart = alerts_in(bootstrap, alert_topic, quiet_ms=300)
    assert sum(before_restart.values()) > 0  # the first run had committed alerts

    for batch in batches[4:]:
        produce_transactions(kafka_producer, tx_topic, batch)
    second = subprocess.run(
        cli(
            "--source",
            f"kafka://{bootstrap}/{tx_topic}?bounded=true,quiet-ms=300",
            *common,
            "--from-checkpoint",
            "latest",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr

    got = alerts_in(bootstrap, alert_topic, quiet_ms=300)
    # No alert lost; deduplicated by (accountId, timestamp) the output equals the
    # uninterrupted run's. Copies are only possible from a commit cut by the kill
    # (Tansu shows aborted transactions to read_committed consumers).
    assert set(got) == set(expected)
    assert all(got[key] >= count for key, count in expected.items())
    duplicates = sum(got.values()) - sum(expected.values())
    print(f"alerts {sum(expected.values())}, copies after kill -9: {duplicates}")
    print(second.stderr)
