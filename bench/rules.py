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

Then the event-to-alert latency of the job at a steady rate (generator paced on the wall
clock): p50 / p99 of (alert reaches the sink - transaction ingestion time).

Rule sets: the demo's four rules (three ACTIVE) and the demo's plus four more (MIN, MAX,
AVG, COUNT_DISTINCT; windows from 1 minute to 30 days).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from fraudstream.common.watermark_strategy import WatermarkStrategy
from fraudstream.connectors.generator import BLOCK, TransactionGenerator
from fraudstream.connectors.inprocess import CallbackSink
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.rules import DEMO_RULES, Rule, build_rules_job, parse_rule
from fraudstream.fraud.rules.model import COUNT_FIELDS, Aggregator
from fraudstream.fraud.rules.windows import RuleWindow
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction

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
        "limit": 40,
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
    return {
        "demo (3 active)": demo,
        "demo + 4 (7 active)": demo + [parse_rule(r) for r in EXTRA_RULES],
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


def measure(fn: Callable[[], int], repeat: int = 1) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


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
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()

    data = transactions(args.events)
    small = data[: args.rescan_events]
    results: dict[str, Any] = {"events": args.events, "rescan_events": len(small), "sets": {}}
    print(f"dynamic rules, {args.events:,} generated demo transactions, one core")
    header = f"{'rule set':22} {'contender':28} {'tx/s':>12} {'alerts':>9} {'vs rescan':>10}"
    print(header)
    print("-" * len(header))
    for name, rules in rule_sets().items():
        rows: dict[str, tuple[float, int]] = {}
        seconds, alerts = measure(functools.partial(engine, data, rules))
        rows["fraudstream job"] = (args.events / seconds, alerts)
        seconds, alerts = measure(functools.partial(incremental_loop, data, rules))
        rows["incremental, no engine"] = (args.events / seconds, alerts)
        seconds, alerts = measure(functools.partial(demo_rescan, small, rules))
        rows[f"demo rescan ({len(small):,} tx)"] = (len(small) / seconds, alerts)
        check = incremental_loop(small, rules)
        if check != alerts:
            print(f"MISMATCH on {name}: rescan {alerts} alerts, incremental {check}")
        rescan_rate = rows[f"demo rescan ({len(small):,} tx)"][0]
        for contender, (rate, count) in rows.items():
            print(f"{name:22} {contender:28} {rate:12,.0f} {count:9,} {rate / rescan_rate:9.1f}x")
        results["sets"][name] = {k: {"tx_per_s": v[0], "alerts": v[1]} for k, v in rows.items()}
    demo = rule_sets()["demo (3 active)"]
    lat = latency(demo, args.rate, args.seconds)
    results["latency"] = {"rate": args.rate, "seconds": args.seconds, **lat}
    print()
    print(f"event-to-alert latency at {args.rate:,.0f} tx/s for {args.seconds:g} s, demo rules:")
    for key, value in lat.items():
        print(f"  {key:22} {value:12,.2f}")
    targets = results["sets"]["demo (3 active)"]["fraudstream job"]["tx_per_s"]
    print()
    print(
        f"target >= 200,000 tx/s with the demo rules: {targets:,.0f} tx/s "
        f"({'met' if targets >= 200_000 else 'NOT met'})"
    )
    p99 = lat.get("p99_ms")
    if p99 is not None:
        print(
            f"target p99 < 5 ms at {args.rate:,.0f} tx/s: {p99:.2f} ms "
            f"({'met' if p99 < 5 else 'NOT met'})"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
