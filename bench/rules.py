"""Dynamic rules: incremental windows in the engine vs the demo's rescanning algorithm.

One run, side by side, over the same generated demo transactions:

* ``fraudstream job`` - the rules job (``build_rules_job``) on the embedded engine, p=1;
* ``incremental, no engine`` - the same windows (``RuleWindow``) in a plain loop: the
  ceiling for this evaluation without engine overhead;
* ``demo rescan`` - a plain-Python loop with the demo's algorithm: keep each key's events
  and rescan them all on every event (quadratic in the events per key and window).
  It is slow, so it runs over the first ``--rescan-events`` transactions and its rate is
  extrapolated to the full count; its per-event cost grows as windows fill, so the
  extrapolation flatters it.

Beside them, ``engine floor``: the job's pipeline (source, watermarks, the fork, key_by,
broadcast) with an alert function that does nothing - what the engine costs per
transaction; the job's cost above it is the evaluation (windows, state, cleanup).

Then the event-to-alert latency of the job at a steady rate (generator paced on the wall
clock): p50 / p99 of (alert reaches the sink - transaction ingestion time).

Every contender runs under the same garbage-collector setting: ``--gc scoped`` (default)
enters :class:`~fraudstream.runtime.gcscope.LongLivedStateGC` around each run, ``--gc
default`` keeps CPython's defaults. Rates are printed on wall time and on the process's
CPU time (the machine is shared: CPU time is less disturbed by other processes).

Rule sets: the demo's four rules (three ACTIVE) and the demo's plus four more (MIN, MAX,
AVG, COUNT_DISTINCT; windows from 1 minute to 30 days).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import operator
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from fraudstream.common.time import Duration
from fraudstream.common.watermark_strategy import WatermarkStrategy
from fraudstream.connectors.generator import BLOCK, TransactionGenerator
from fraudstream.connectors.inprocess import CallbackSink
from fraudstream.datastream import KeyedBroadcastProcessFunction, StreamExecutionEnvironment
from fraudstream.datastream.batch import BatchOutput
from fraudstream.fraud.rules import DEMO_RULES, Rule, build_rules_job, parse_rule
from fraudstream.fraud.rules.functions import (
    RULES_DESCRIPTOR,
    RULES_META_DESCRIPTOR,
    DynamicKeyFunction,
)
from fraudstream.fraud.rules.job import TransactionEventTime
from fraudstream.fraud.rules.model import COUNT_FIELDS, Aggregator, RuleState
from fraudstream.fraud.rules.windows import RuleWindow
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction
from fraudstream.runtime.gcscope import LongLivedStateGC

EXTRA_RULES = [
    {
        "ruleId": 5,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["payeeId"],
        "aggregateFieldName": "paymentAmount",
        "aggregatorFunctionType": "MIN",
        "limitOperatorType": "<",
        "limit": 1,
        "windowMinutes": 1,
    },
    {
        "ruleId": 6,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["beneficiaryId"],
        "aggregateFieldName": "paymentAmount",
        "aggregatorFunctionType": "MAX",
        "limitOperatorType": ">=",
        "limit": 5_000_000,
        "windowMinutes": 60,
    },
    {
        "ruleId": 7,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["payeeId"],
        "aggregateFieldName": "paymentAmount",
        "aggregatorFunctionType": "AVG",
        "limitOperatorType": ">",
        "limit": 1_000_000,
        "windowMinutes": 1440,
    },
    {
        "ruleId": 8,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["beneficiaryId"],
        "aggregateFieldName": "payeeId",
        "aggregatorFunctionType": "COUNT_DISTINCT",
        "limitOperatorType": ">",
        "limit": 150,
        "windowMinutes": 43200,
    },
]


def transactions(count: int, seed: int = 7) -> list[Transaction]:
    generator = TransactionGenerator(seed=seed, count=count)
    out: list[Transaction] = []
    for number in range((count + BLOCK - 1) // BLOCK):
        out.extend(generator.block(number))
    return out[:count]


def rule_sets() -> dict[str, list[Rule]]:
    demo = [parse_rule(r) for r in DEMO_RULES]
    hot = [r.with_state(RuleState.ACTIVE) for r in demo]  # the demo's rule 2 in force too
    return {
        "demo (3 active)": demo,
        "demo + 4 (7 active)": demo + [parse_rule(r) for r in EXTRA_RULES],
        "demo, rule 2 on (hot key)": hot,
    }


# -- the contenders -----------------------------------------------------------------------------


def engine(data: list[Transaction], rules: list[Rule]) -> int:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    alerts = [0]

    def count(batch: Sequence[Any]) -> None:
        alerts[0] += len(batch)

    stream = env.from_collection(data)
    no_rules = env.from_collection([])
    streams = build_rules_job(stream, no_rules, initial_rules=rules, out_of_orderness_ms=5000)
    streams.alerts.sink_to(CallbackSink(count))
    env.execute("bench rules")
    return alerts[0]


class NoAlerts(KeyedBroadcastProcessFunction):
    """An alert function that does nothing (per record or per batch): the engine floor."""

    def process_element(self, value: Any, ctx: Any) -> tuple[()]:
        return ()

    def process_broadcast_element(self, value: Any, ctx: Any) -> tuple[()]:
        return ()

    def process_keyed_batch(
        self, keys: list[Any], values: list[Any], timestamps: Any, ctx: Any, out: BatchOutput
    ) -> None:
        return None


def engine_floor(data: list[Transaction], rules: list[Rule]) -> int:
    """The rules job's pipeline, fork included, with :class:`NoAlerts` for the windows."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(5000)
    ).with_timestamp_assigner(TransactionEventTime())
    transactions = env.from_collection(data).assign_timestamps_and_watermarks(strategy)
    broadcast = env.from_collection([]).broadcast(RULES_DESCRIPTOR, RULES_META_DESCRIPTOR)
    forked = transactions.connect(broadcast).process(DynamicKeyFunction(rules))
    keyed = forked.key_by(operator.itemgetter(0)).connect(broadcast).process(NoAlerts())
    keyed.sink_to(CallbackSink(lambda batch: None))
    env.execute("bench rules floor")
    return 0


def incremental_loop(data: list[Transaction], rules: list[Rule]) -> int:
    active = [r for r in rules if r.evaluated]
    prepared: list[tuple[Rule, list[int], int, dict[Any, RuleWindow], Any]] = []
    for rule in active:
        getter = [TRANSACTION_FIELDS[n] for n in rule.grouping_key_names]
        field = rule.aggregate_field_name
        index = -1 if field in COUNT_FIELDS else TRANSACTION_FIELDS[field]
        prepared.append((rule, getter, index, {}, rule.limit_operator_type.apply))
    alerts = 0
    for tx in data:
        t = tx[1]
        for rule, getter, index, windows, op in prepared:
            key = tuple(tx[i] for i in getter)
            window = windows.get(key)
            if window is None:
                window = windows[key] = RuleWindow(rule)
            value, _, _, _ = window.add(t, 1.0 if index < 0 else tx[index])
            if value is not None and op(value, rule.limit):
                alerts += 1
                if rule.aggregate_field_name == "COUNT_WITH_RESET_FLINK":
                    window.clear()
    return alerts


def demo_rescan(data: list[Transaction], rules: list[Rule]) -> int:
    """The demo's DynamicAlertFunction as a plain loop: rescan the key's state per event."""
    active = [r for r in rules if r.evaluated]
    widest = max(r.window_ms for r in active)
    states: list[dict[tuple[Any, ...], dict[int, list[Transaction]]]] = [{} for _ in active]
    alerts = 0
    for tx in data:
        t = tx[1]
        for rule, state in zip(active, states):
            key = tuple(tx[TRANSACTION_FIELDS[n]] for n in rule.grouping_key_names)
            window_state = state.setdefault(key, {})
            window_state.setdefault(t, []).append(tx)
            start = t - rule.window_ms
            field = rule.aggregate_field_name
            values: list[Any] = []
            for stamp, events in window_state.items():  # the rescan
                if start <= stamp <= t:
                    for event in events:
                        values.append(
                            1.0 if field in COUNT_FIELDS else event[TRANSACTION_FIELDS[field]]
                        )
            aggregate = _aggregate(rule.aggregator_function_type, values)
            if aggregate is not None and rule.limit_operator_type.apply(aggregate, rule.limit):
                alerts += 1
                if field == "COUNT_WITH_RESET_FLINK":
                    window_state.clear()
            # The demo's cleanup timer: forget events older than the widest window.
            for stamp in [s for s in window_state if s < t - widest]:
                del window_state[stamp]
    return alerts


def _aggregate(kind: Aggregator, values: list[Any]) -> float | None:
    if not values:
        return None
    if kind is Aggregator.SUM:
        return float(sum(values))
    if kind is Aggregator.AVG:
        return float(sum(values)) / len(values)
    if kind is Aggregator.MIN:
        return float(min(values))
    if kind is Aggregator.MAX:
        return float(max(values))
    if kind is Aggregator.COUNT_DISTINCT:
        return float(len(set(values)))
    return float(statistics.pstdev(values))


def gc_setting(name: str) -> contextlib.AbstractContextManager[Any]:
    """The garbage-collector setting every contender runs under."""
    return LongLivedStateGC() if name == "scoped" else contextlib.nullcontext()


def measure(fn: Callable[[], int], gc_mode: str, repeat: int = 1) -> tuple[float, float, int]:
    """Best wall and CPU seconds of ``repeat`` runs, and the result."""
    wall, cpu, result = float("inf"), float("inf"), 0
    for _ in range(repeat):
        with gc_setting(gc_mode):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = fn()
            wall = min(wall, time.perf_counter() - started)
            cpu = min(cpu, time.process_time() - started_cpu)
    return wall, cpu, result


# -- latency at a steady rate -------------------------------------------------------------------


def latency(rules: list[Rule], rate: float, seconds: float) -> dict[str, float]:
    """Event-to-alert latency (ms) of the job fed at ``rate`` tx/s for ``seconds``."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    count = int(rate * seconds)
    source = TransactionGenerator(seed=11, rate=rate, count=count, time="clock", fraud_rate=0.002)
    samples: list[float] = []
    evaluations: list[int] = []

    def on_alerts(batch: Sequence[Any]) -> None:
        now = time.time_ns() / 1e6
        samples.extend(now - a.triggering_event.ingestion_timestamp for a in batch)

    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "generator")
    streams = build_rules_job(
        stream, env.from_collection([]), initial_rules=rules, out_of_orderness_ms=5000
    )
    streams.alerts.sink_to(CallbackSink(on_alerts))
    streams.latency.sink_to(CallbackSink(evaluations.extend))
    started = time.perf_counter()
    env.execute("bench rules latency")
    elapsed = time.perf_counter() - started
    if not samples:
        return {"alerts": 0.0}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    eval_cuts = statistics.quantiles(evaluations, n=100, method="inclusive")
    return {
        "alerts": float(len(samples)),
        "achieved_tx_per_s": count / elapsed,
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
        "max_ms": max(samples),
        "evaluation_p50_ms": eval_cuts[49],
        "evaluation_p99_ms": eval_cuts[98],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rescan-events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10_000.0, help="tx/s for the latency run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the latency run")
    parser.add_argument(
        "--gc",
        choices=["scoped", "default"],
        default="scoped",
        help="garbage-collector setting for every contender (default: scoped)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per contender")
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()

    data = transactions(args.events)
    results: dict[str, Any] = {"events": args.events, "gc": args.gc, "sets": {}}
    print(f"dynamic rules, {args.events:,} generated demo transactions, one core, gc {args.gc}")
    header = (
        f"{'rule set':26} {'contender':30} {'tx/s (wall)':>12} {'tx/s (cpu)':>12} "
        f"{'us/tx cpu':>9} {'alerts':>9} {'vs rescan':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, rules in rule_sets().items():
        results["sets"][name] = _rule_set(name, rules, data, args)
    demo = rule_sets()["demo (3 active)"]
    with gc_setting(args.gc):
        lat = latency(demo, args.rate, args.seconds)
    results["latency"] = {"rate": args.rate, "seconds": args.seconds, **lat}
    print()
    print(f"event-to-alert latency at {args.rate:,.0f} tx/s for {args.seconds:g} s, demo rules:")
    for key, value in lat.items():
        print(f"  {key:22} {value:12,.2f}")
    _targets(results, args.rate)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


def _rule_set(
    name: str, rules: list[Rule], data: list[Transaction], args: argparse.Namespace
) -> dict[str, Any]:
    """Every contender over one rule set; prints its rows and the per-transaction costs."""
    # Rule 2 counts every payment of a type over a day: the rescan is quadratic there.
    small = data[: args.rescan_events if "hot" not in name else args.rescan_events // 10]
    contenders: list[tuple[str, Callable[[], int], int]] = [
        ("fraudstream job", functools.partial(engine, data, rules), len(data)),
        ("engine floor (no evaluation)", functools.partial(engine_floor, data, rules), len(data)),
        ("incremental, no engine", functools.partial(incremental_loop, data, rules), len(data)),
        (
            f"fraudstream job ({len(small):,} tx)",
            functools.partial(engine, small, rules),
            len(small),
        ),
        (
            f"demo rescan ({len(small):,} tx)",
            functools.partial(demo_rescan, small, rules),
            len(small),
        ),
    ]
    rows: dict[str, dict[str, float]] = {}
    for contender, fn, count in contenders:
        wall, cpu, alerts = measure(fn, args.gc, args.repeat)
        rows[contender] = {
            "tx_per_s": count / wall,
            "tx_per_cpu_s": count / cpu,
            "us_per_tx_cpu": cpu / count * 1e6,
            "alerts": alerts,
        }
    rescan = rows[contenders[-1][0]]
    check = incremental_loop(small, rules)
    if check != rescan["alerts"]:
        print(f"MISMATCH on {name}: rescan {rescan['alerts']} alerts, incremental {check}")
    for contender, row in rows.items():
        print(
            f"{name:26} {contender:30} {row['tx_per_s']:12,.0f} {row['tx_per_cpu_s']:12,.0f} "
            f"{row['us_per_tx_cpu']:9.2f} {row['alerts']:9,.0f} "
            f"{row['tx_per_s'] / rescan['tx_per_s']:9.1f}x"
        )
    job, floor = rows["fraudstream job"], rows["engine floor (no evaluation)"]
    print(
        f"{name:26} per transaction (cpu): engine and fork {floor['us_per_tx_cpu']:.2f} us, "
        f"evaluation {job['us_per_tx_cpu'] - floor['us_per_tx_cpu']:.2f} us"
    )
    return rows


def _targets(results: dict[str, Any], rate: float) -> None:
    job = results["sets"]["demo (3 active)"]["fraudstream job"]
    print()
    met = "met" if job["tx_per_s"] >= 200_000 else "NOT met"
    print(
        f"target >= 200,000 tx/s with the demo rules: {job['tx_per_s']:,.0f} tx/s wall, "
        f"{job['tx_per_cpu_s']:,.0f} tx/s cpu ({met})"
    )
    p99 = results["latency"].get("p99_ms")
    if p99 is not None:
        met = "met" if p99 < 5 else "NOT met"
        print(f"target p99 < 5 ms at {rate:,.0f} tx/s: {p99:.2f} ms ({met})")


if __name__ == "__main__":
    sys.exit(main())
