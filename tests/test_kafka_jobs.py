"""``fraudstream job`` over Kafka topics on the real broker: results, and kill -9 + restore.

Alerts are compared with the same transactions run in-process (collection source,
capturing sink). Their dedupe key is ``(accountId, timestamp)``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fraudstream.connectors.base import ReaderContext
from fraudstream.connectors.codecs import encode_transaction_json
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.connectors.kafka import create_topic, read_topic
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import build_tutorial_job
from fraudstream.testing import CapturingSink
from kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka

Topic = Callable[[str], str]
AlertKey = tuple[int, int, float]


def transactions(count: int, seed: int) -> list[Transaction]:
    """Generated payments of 60 accounts with many small-then-large patterns."""
    source = TransactionGenerator(seed=seed, count=count, accounts=60, tutorial_rate=0.05)
    reader = source.create_reader(0, 1)
    reader.open(ReaderContext())
    out: list[Transaction] = []
    while (batch := reader.poll(1000)) is not None:
        out.extend(batch)
    reader.close()
    assert len(out) == count
    return out


def produce_transactions(producer: Any, topic: str, txs: list[Transaction]) -> None:
    """Keyed by payee, so each account's transactions stay in order in one partition."""
    for tx in txs:
        value = encode_transaction_json(tx)
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


def test_tutorial_job_from_kafka_to_kafka_equals_the_jsonl_run(
    kafka_broker: KafkaBroker, kafka_topic: Topic, kafka_producer: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    tx_topic, alert_topic = kafka_topic("transactions"), kafka_topic("alerts")
    dlq_topic = kafka_topic("dead-letters")
    create_topic(bootstrap, tx_topic, 4)
    txs = transactions(3000, seed=1)
    produce_transactions(kafka_producer, tx_topic, txs[:1500])
    # hostile records between the good ones go to the dead letters; the job keeps going
    produce_raw(kafka_producer, tx_topic, HOSTILE)
    produce_transactions(kafka_producer, tx_topic, txs[1500:])
    # the same input as a JSONL file, hostile lines included
    lines = [encode_transaction_json(tx) for tx in txs[:1500]]
    lines += [h for h in HOSTILE if h and b"\n" not in h]
    lines += [encode_transaction_json(tx) for tx in txs[1500:]]
    (tmp_path / "tx.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    from_file = subprocess.run(
        cli("--source", f"jsonl:{tmp_path / 'tx.jsonl'}", "--sink", f"jsonl:{tmp_path / 'a'}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert from_file.returncode == 0, from_file.stderr
    expected: Counter[AlertKey] = Counter()
    for line in (tmp_path / "a").read_text().splitlines():
        alert = json.loads(line)
        expected[(alert["accountId"], alert["timestamp"], alert["amount"])] += 1
    assert sum(expected.values()) > 50
    assert expected == expected_alerts(txs)

    from_kafka = subprocess.run(
        cli(
            "--source",
            f"kafka://{bootstrap}/{tx_topic}?bounded=true,quiet-ms=300",
            "--sink",
            f"kafka://{bootstrap}/{alert_topic}?partitions=2",
            "--dead-letters",
            f"kafka://{bootstrap}/{dlq_topic}?partitions=1",
            "-p",
            "2",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert from_kafka.returncode == 0, from_kafka.stderr
    assert f"{len(HOSTILE)} bad record(s)" in from_kafka.stderr
    assert alerts_in(bootstrap, alert_topic, quiet_ms=300) == expected
    letters = [json.loads(r.value or b"") for r in read_topic(bootstrap, dlq_topic, expected=7)]
    assert sorted(letter["raw"] for letter in letters) == sorted(
        h.decode("utf-8", errors="replace") for h in HOSTILE
    )
    assert all(letter["reason"] and ":" in letter["position"] for letter in letters)


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
    generated = transactions(9000, seed=2)
    batches = [generated[i : i + 1500] for i in range(0, 9000, 1500)]
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


def _rule_alerts(lines: list[bytes]) -> Counter[str]:
    """Rule alerts without their processing-time stamp, comparable across runs."""
    out: Counter[str] = Counter()
    for line in lines:
        alert = json.loads(line)
        alert.pop("alertTime", None)
        out[json.dumps(alert, sort_keys=True)] += 1
    return out


def test_rules_job_from_kafka_to_kafka_equals_the_jsonl_run(
    kafka_broker: KafkaBroker, kafka_topic: Topic, kafka_producer: Any, tmp_path: Path
) -> None:
    # One partition: rules keyed by beneficiary or payment type see every transaction, so
    # their results depend on the order across payees, which only one partition keeps.
    bootstrap = kafka_broker.bootstrap
    tx_topic, alert_topic = kafka_topic("transactions"), kafka_topic("alerts")
    create_topic(bootstrap, tx_topic, 1)
    source = TransactionGenerator(seed=3, count=4000, accounts=40, fraud_rate=0.01)
    reader = source.create_reader(0, 1)
    reader.open(ReaderContext())
    txs: list[Transaction] = []
    while (batch := reader.poll(1000)) is not None:
        txs.extend(batch)
    produce_transactions(kafka_producer, tx_topic, txs)
    (tmp_path / "tx.jsonl").write_bytes(b"".join(encode_transaction_json(t) + b"\n" for t in txs))

    def job(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "fraudstream", "job", "rules", "-p", "2", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    job("--source", f"jsonl:{tmp_path / 'tx.jsonl'}", "--sink", f"jsonl:{tmp_path / 'a'}")
    expected = _rule_alerts((tmp_path / "a").read_bytes().splitlines())
    assert sum(expected.values()) > 20
    job(
        "--source",
        f"kafka://{bootstrap}/{tx_topic}?bounded=true,quiet-ms=300",
        "--sink",
        f"kafka://{bootstrap}/{alert_topic}?partitions=2",
    )
    got = [r.value or b"" for r in read_topic(bootstrap, alert_topic, quiet_ms=300)]
    assert _rule_alerts(got) == expected
