"""Tutorial fraud detector: events/s of fraudstream beside its peers, in one run.

    ./dev bench tutorial [--events N] [--peers] [--plot FILE]

Every engine processes the same prebuilt 1,000,000 ``(account_id, timestamp, amount)``
tuples over 10,000 accounts (source -> key_by -> FraudDetector -> counting sink) and must
find the same number of alerts. Printed: events/s per engine and ratios to Bytewax and to
the plain loop. Also: ``fraudstream run`` of the tutorial program, process start to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import bytewax_detect, tutorial_transactions

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "pyflink_tutorial_fraud_detection.py"


def plain_loop(data: list[tuple[int, int, float]]) -> int:
    """The ceiling for Python: one dict, no engine."""
    flags: dict[int, bool] = {}
    alerts = 0
    for account, _ts, amount in data:
        if account in flags:
            if amount > 500.0:
                alerts += 1
            del flags[account]
        if amount < 1.0:
            flags[account] = True
    return alerts


def fraudstream_engine(data: list[tuple[int, int, float]], parallelism: int = 1) -> int:
    """The tutorial job on the embedded engine."""
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.tutorial import build_tutorial_job

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    count = [0]

    class Counter:
        def invoke(self, value: Any, context: Any) -> None:
            count[0] += 1

    build_tutorial_job(env.from_collection(data)).add_sink(Counter())
    env.execute("bench-tutorial")
    return count[0]


def bytewax_engine(data: list[tuple[int, int, float]]) -> int:
    """Bytewax with the same logic (stateful_map, batches of 1000)."""
    import importlib

    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSource

    run_main = importlib.import_module("bytewax.testing").run_main

    flow = Dataflow("tutorial")
    stream = op.input("in", flow, TestingSource(data, batch_size=1000))
    keyed = op.key_on("key", stream, lambda t: str(t[0]))

    count = [0]
    detected = op.stateful_map("detect", keyed, bytewax_detect)

    def tally(step: str, item: Any) -> None:
        count[0] += item[1]

    op.inspect("count", detected, tally)
    run_main(flow)
    return count[0]


def pyflink_engine(events: int) -> tuple[float, int] | None:
    """PyFlink thread mode via its own venv, when there is one."""
    python = os.environ.get("FRAUDSTREAM_FLINK_PYTHON", str(ROOT / ".venv-flink/bin/python"))
    peer = ROOT / "bench" / "peers" / "pyflink_tutorial.py"
    if not (Path(python).exists() and peer.exists()):
        return None
    proc = subprocess.run(
        [python, str(peer), "--events", str(events)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        print(f"  pyflink failed: {proc.stderr[-500:]}", file=sys.stderr)
        return None
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(report["events"]) / float(report["seconds"]), int(report["alerts"])


def measure(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """Best of ``repeat`` wall-clock runs, and the alert count."""
    best = float("inf")
    alerts = -1
    for _ in range(repeat):
        started = time.perf_counter()
        alerts = fn()
        best = min(best, time.perf_counter() - started)
    return best, alerts


def run_program_seconds() -> float | None:
    """``fraudstream run`` of the tutorial fixture, process start to exit (best of 3)."""
    if not FIXTURE.exists():
        return None
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fraudstream", "run", str(FIXTURE)],
            check=True,
            capture_output=True,
        )
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--peers", action="store_true", help="also run Bytewax and PyFlink")
    parser.add_argument("--pyflink-events", type=int, default=100_000)
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()

    data = tutorial_transactions(args.events)
    rows: dict[str, tuple[float, int]] = {}
    seconds, alerts = measure(lambda: plain_loop(data))
    rows["plain loop + dict"] = (args.events / seconds, alerts)
    seconds, alerts = measure(lambda: fraudstream_engine(data))
    rows["fraudstream p=1"] = (args.events / seconds, alerts)
    if args.peers:
        try:
            seconds, alerts = measure(lambda: bytewax_engine(data), repeat=1)
            rows["bytewax 0.21"] = (args.events / seconds, alerts)
        except ImportError:
            print("bytewax not installed: skipped (./dev bench installs it)", file=sys.stderr)
        flink = pyflink_engine(args.pyflink_events)
        if flink is not None:
            small = tutorial_transactions(args.pyflink_events)
            rows[f"pyflink thread ({args.pyflink_events} events)"] = (flink[0], flink[1])
            expected_small = plain_loop(small)
            if flink[1] != expected_small:
                print(f"MISMATCH: pyflink found {flink[1]} alerts, expected {expected_small}")
    expected = rows["plain loop + dict"][1]
    bytewax = rows.get("bytewax 0.21", (0.0, 0))[0]
    ceiling = rows["plain loop + dict"][0]
    print(
        f"tutorial detector, {args.events:,} events, 10,000 accounts, {expected:,} alerts expected"
    )
    print(f"{'engine':<34}{'events/s':>14}{'x plain':>10}{'x bytewax':>11}{'alerts':>10}")
    ok = True
    for name, (rate, found) in rows.items():
        vs_bytewax = f"{rate / bytewax:.2f}" if bytewax else "-"
        print(f"{name:<34}{rate:>14,.0f}{rate / ceiling:>10.3f}{vs_bytewax:>11}{found:>10,}")
        if "pyflink" not in name and found != expected:
            ok = False
            print(f"MISMATCH: {name} found {found} alerts, expected {expected}")
    startup = run_program_seconds()
    if startup is not None:
        print(f"fraudstream run tutorial program, start to exit: {startup:.2f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": {k: {"events_per_s": v[0], "alerts": v[1]} for k, v in rows.items()},
                    "run_seconds": startup,
                },
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
