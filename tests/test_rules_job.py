"""The rules job against a brute-force oracle, and its control commands and side outputs.

Rules and transactions come from one scripted source, split in two, read one record per
batch: the interleaving of rules and transactions, and the watermark after each record,
are exactly what the oracle replays.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.common.time import Duration
from fraudstream.common.watermark_strategy import MIN_WATERMARK, TimestampAssigner
from fraudstream.common.watermark_strategy import WatermarkStrategy as WS
from fraudstream.datastream import OutputTag, ProcessFunction, StreamExecutionEnvironment
from fraudstream.fraud.rules import (
    DEMO_RULES,
    Aggregator,
    ControlType,
    Rule,
    RuleAlert,
    RuleState,
    build_rules_job,
    parse_rule,
)
from fraudstream.fraud.rules.alert import format_key
from fraudstream.fraud.rules.functions import DynamicAlertFunction, DynamicKeyFunction
from fraudstream.fraud.rules.model import COUNT_FIELDS
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction
from fraudstream.testing import CapturingSink, ScriptedSource

BOUND = 29_999  # a grid step of 10 s lands exactly on the watermark
RULES_IN = OutputTag("rules-in")
Batch = Rule | list[Transaction]


class SplitRules(ProcessFunction):
    """Rules to a side output, transactions to the main output."""

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterator[Any]:
        if isinstance(value, Rule):
            yield RULES_IN, value
        else:
            yield value


class ScriptTime(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[1] if isinstance(value, Transaction) else MIN_WATERMARK


@dataclass
class Outputs:
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    shadow: list[tuple[Any, ...]] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    exported: list[tuple[int, int, str]] = field(default_factory=list)  # every export, in order
    raw_alerts: list[RuleAlert] = field(default_factory=list)

    def normalized(self) -> tuple[Any, ...]:
        return (sorted(self.alerts), sorted(self.shadow), sorted(self.late), self.exported)


def alert_row(a: RuleAlert) -> tuple[Any, ...]:
    return (
        a.rule_id,
        a.rule_version,
        a.key,
        a.triggering_event.transaction_id,
        round(a.aggregate, 6),
        a.events_in_window,
        a.window_start,
        a.window_end,
    )


def run_job(
    batches: Sequence[Batch],
    initial: Sequence[Rule],
    parallelism: int = 1,
    state_backend: Any = None,
) -> Outputs:
    script: list[Any] = []
    for batch in batches:
        script.extend([batch] if isinstance(batch, Rule) else batch)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism).set_batch_size(1)
    if state_backend is not None:
        env.set_state_backend(state_backend)
    strategy = WS.for_bounded_out_of_orderness(Duration.of_millis(BOUND)).with_timestamp_assigner(
        ScriptTime()
    )
    source = env.from_source(ScriptedSource(script), strategy, "script")
    split = source.process(SplitRules())
    streams = build_rules_job(
        split, split.get_side_output(RULES_IN), initial_rules=initial, rules_hold_back_time=True
    )
    sinks = [CapturingSink() for _ in range(4)]
    streams.alerts.sink_to(sinks[0])
    streams.shadow.sink_to(sinks[1])
    streams.late.sink_to(sinks[2])
    streams.current_rules.sink_to(sinks[3])
    env.execute("rules-test")
    out = Outputs()
    out.raw_alerts = list(sinks[0].results)
    out.alerts = [alert_row(a) for a in sinks[0].results]
    assert all(a.shadow for a in sinks[1].results)
    assert not any(a.shadow for a in sinks[0].results)
    out.shadow = [alert_row(a) for a in sinks[1].results]
    out.late = [tx.transaction_id for tx in sinks[2].results]
    out.exported = [(r.rule_id, r.version, r.rule_state.value) for r in sinks[3].results]
    return out


# -- the oracle: every window recomputed from scratch -------------------------------------------


def aggregate(rule: Rule, values: list[Any]) -> float | None:
    agg = rule.aggregator_function_type
    if not values:
        return None
    if agg is Aggregator.SUM:
        return float(sum(values))
    if agg is Aggregator.AVG:
        return float(sum(values)) / len(values)
    if agg is Aggregator.MIN:
        return float(min(values))
    if agg is Aggregator.MAX:
        return float(max(values))
    if agg is Aggregator.COUNT_DISTINCT:
        return float(len(set(values)))
    return float(statistics.pstdev(values))


def oracle(batches: Sequence[Batch], initial: Sequence[Rule]) -> Outputs:
    rules = {r.rule_id: r for r in initial}
    events: dict[tuple[int, Any], list[tuple[int, Any]]] = {}
    last_alert: dict[tuple[int, Any], int] = {}
    out = Outputs()
    max_ts = MIN_WATERMARK + BOUND + 1
    watermark = MIN_WATERMARK

    def drop(rule_ids: set[int]) -> None:
        for store in (events, last_alert):
            for key in [k for k in store if k[0] in rule_ids]:
                del store[key]

    for batch in batches:
        if isinstance(batch, Rule):
            before = dict(rules)
            control = batch.control_type
            if control is ControlType.DELETE_RULES_ALL:
                rules.clear()
            elif control is ControlType.CLEAR_STATE_ALL_STOP:
                rules = {i: r.with_state(RuleState.PAUSE) for i, r in rules.items()}
            elif control is ControlType.EXPORT_RULES_CURRENT:
                out.exported += sorted(
                    (r.rule_id, r.version, r.rule_state.value) for r in rules.values()
                )
            elif batch.rule_state is RuleState.DELETE:
                rules.pop(batch.rule_id, None)
            elif not batch.is_control:
                rules[batch.rule_id] = batch
            if control in (ControlType.CLEAR_STATE_ALL, ControlType.CLEAR_STATE_ALL_STOP):
                events.clear()
                last_alert.clear()
            else:
                stale = {
                    i
                    for i, old in before.items()
                    if old.evaluated
                    and (
                        i not in rules
                        or not rules[i].evaluated
                        or rules[i].collection_signature() != old.collection_signature()
                    )
                }
                drop(stale)
            continue
        for tx in batch:
            t = tx.event_time
            if t <= watermark:
                out.late.append(tx.transaction_id)
                continue  # late: its time is below the largest, the watermark stays
            for rule_id, rule in sorted(rules.items()):
                if not rule.evaluated or not all(f.accepts(tx) for f in rule.filters):
                    continue
                names = rule.grouping_key_names
                values = tuple(tx[TRANSACTION_FIELDS[n]] for n in names)
                key = (rule_id, values)
                field_name = rule.aggregate_field_name
                value = 1.0 if field_name in COUNT_FIELDS else tx[TRANSACTION_FIELDS[field_name]]
                stored = events.setdefault(key, [])
                stored.append((t, value))
                window = [v for (u, v) in stored if t - rule.window_ms <= u <= t]
                agg = aggregate(rule, window)
                if agg is None or not rule.limit_operator_type.apply(agg, rule.limit):
                    continue
                last = last_alert.get(key)
                cooldown = rule.cooldown_seconds * 1000
                if last is not None and t - last < cooldown:
                    continue
                if cooldown:
                    last_alert[key] = t
                if field_name == "COUNT_WITH_RESET_FLINK":
                    stored.clear()
                row = (
                    rule_id,
                    rule.version,
                    format_key(names, values[0] if len(values) == 1 else values),
                    tx.transaction_id,
                    round(agg, 6),
                    len(window),
                    t - rule.window_ms,
                    t,
                )
                (out.shadow if rule.rule_state is RuleState.SHADOW else out.alerts).append(row)
            max_ts = max(max_ts, t)
            watermark = max_ts - BOUND - 1
    return out


# -- generated scripts --------------------------------------------------------------------------

GROUP_FIELDS = ["payeeId", "beneficiaryId", "paymentType"]


@st.composite
def rules_strategy(draw: Any, rule_id: int | None = None, version: int = 0) -> Rule:
    aggregator = draw(st.sampled_from(list(Aggregator)))
    fields = ["paymentAmount", "COUNT_FLINK", "COUNT_WITH_RESET_FLINK", "payeeId"]
    if aggregator is Aggregator.COUNT_DISTINCT:
        fields.append("paymentType")
    field_name = draw(st.sampled_from(fields))
    grouping = draw(st.lists(st.sampled_from(GROUP_FIELDS), min_size=1, max_size=3, unique=True))
    operator = draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="]))
    limit: float = draw(st.integers(min_value=0, max_value=120))
    cooldown = draw(st.sampled_from([0, 0, 30]))
    if aggregator is Aggregator.STDDEV:
        # Irrational values: keep them away from the limit, the rest is exact arithmetic.
        operator, limit, cooldown = ">", draw(st.sampled_from([-1, 10**9])), 0
    doc: dict[str, Any] = {
        "ruleId": rule_id if rule_id is not None else draw(st.integers(min_value=1, max_value=4)),
        "ruleState": draw(st.sampled_from(["ACTIVE", "ACTIVE", "ACTIVE", "SHADOW", "PAUSE"])),
        "groupingKeyNames": grouping,
        "aggregateFieldName": field_name,
        "aggregatorFunctionType": aggregator.value,
        "limitOperatorType": operator,
        "limit": limit,
        "windowMinutes": draw(st.integers(min_value=1, max_value=3)),
        "cooldownSeconds": cooldown,
        "version": version,
    }
    filters = draw(
        st.sampled_from(
            [
                [],
                [],
                [{"field": "paymentType", "operator": "=", "value": "CRD"}],
                [{"field": "paymentAmount", "operator": ">", "value": 10}],
            ]
        )
    )
    if filters:
        doc["filters"] = filters
    return parse_rule(doc)


@st.composite
def scripts(draw: Any) -> tuple[list[Rule], list[Batch]]:
    initial_ids = draw(st.lists(st.integers(min_value=1, max_value=4), max_size=3, unique=True))
    initial = [draw(rules_strategy(rule_id=i, version=1)) for i in initial_ids]
    batches: list[Batch] = []
    max_t = 1_000_000
    tx_id = 0
    for step in range(draw(st.integers(min_value=1, max_value=30))):
        kind = draw(st.sampled_from(["tx"] * 8 + ["rule", "delete", "control"]))
        if kind == "tx":
            batch = []
            for _ in range(draw(st.integers(min_value=1, max_value=4))):
                t = max_t + draw(st.integers(min_value=-3, max_value=4)) * 10_000
                max_t = max(max_t, t)
                tx_id += 1
                batch.append(
                    Transaction(
                        tx_id,
                        t,
                        draw(st.integers(min_value=1, max_value=3)),
                        draw(st.integers(min_value=1, max_value=2)),
                        float(draw(st.integers(min_value=0, max_value=50))),
                        draw(st.sampled_from(["CSH", "CRD"])),
                        0,
                    )
                )
            batches.append(batch)
        elif kind == "rule":
            batches.append(draw(rules_strategy(version=step + 2)))
        elif kind == "delete":
            base = draw(rules_strategy(version=step + 2))
            batches.append(base.with_state(RuleState.DELETE))
        else:
            control = draw(st.sampled_from(list(ControlType)))
            batches.append(parse_rule({"ruleState": "CONTROL", "controlType": control.value}))
    return initial, batches


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_job_matches_brute_force_oracle(script: tuple[list[Rule], list[Batch]]) -> None:
    initial, batches = script
    assert run_job(batches, initial).normalized() == oracle(batches, initial).normalized()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_per_record_path_matches_the_oracle(script: tuple[list[Rule], list[Batch]]) -> None:
    """Without the engine's batch hooks (as on PyFlink): a call per record, timers per key."""
    initial, batches = script
    with per_record_calls():
        assert run_job(batches, initial).normalized() == oracle(batches, initial).normalized()


@contextmanager
def per_record_calls() -> Iterator[None]:
    """Run the rules functions as PyFlink does: hide their batch hooks from the engine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamicAlertFunction, "process_keyed_batch", None)
        patch.setattr(DynamicKeyFunction, "process_element_batch", None)
        yield


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_parallelism_two_gives_the_same_alerts(script: tuple[list[Rule], list[Batch]]) -> None:
    initial, batches = script
    one = run_job(batches, initial, parallelism=1).normalized()
    two = run_job(batches, initial, parallelism=2).normalized()
    assert one == two == oracle(batches, initial).normalized()


# -- the demo's rules over a deterministic stream with injected bursts --------------------------

DAY = 86_400_000


def demo_stream() -> list[Transaction]:
    """Small payments between 50 payees and 40 beneficiaries, with three injected frauds."""
    out: list[Transaction] = []
    t = 1_700_000_000_000
    for i in range(3000):
        t += 20_000  # one payment every 20 s: 3000 payments span ~17 hours
        payee, beneficiary = (i * 7) % 50, (i * 11) % 40
        amount = 50.0 + (i * 37) % 900
        if i in (1000, 1001, 1002):  # a burst of large payments from payee 3 to beneficiary 9
            payee, beneficiary, amount = 3, 9, 7_000_000.0
        out.append(Transaction(i, t, payee, beneficiary, amount, "CRD" if i % 3 else "CSH", t))
    return out


@pytest.mark.parametrize("batches", [True, False], ids=["batch-hooks", "per-record"])
def test_rocksdb_state_gives_the_oracle_alerts(tmp_path: Path, batches: bool) -> None:
    """State read and written back through RocksDB: compact, one-window and full forms."""
    from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend

    demo = [parse_rule(d) for d in DEMO_RULES]
    stream = demo_stream()
    narrower = parse_rule({**DEMO_RULES[2], "windowMinutes": 60, "version": 2})
    clear = parse_rule({"ruleState": "CONTROL", "controlType": "CLEAR_STATE_ALL"})
    script: list[Batch] = [stream[:1200], narrower, stream[1200:2400], clear, stream[2400:]]
    backend = EmbeddedRocksDBStateBackend(db_storage_path=str(tmp_path))
    with contextlib.nullcontext() if batches else per_record_calls():
        out = run_job(script, demo, state_backend=backend)
    assert out.alerts
    assert out.normalized() == oracle(script, demo).normalized()


def test_demo_rules_raise_the_demo_alerts() -> None:
    demo = [parse_rule(d) for d in DEMO_RULES]
    out = run_job([demo_stream()], demo)
    by_rule: dict[int, list[RuleAlert]] = {}
    for alert in out.raw_alerts:
        by_rule.setdefault(alert.rule_id, []).append(alert)
    assert set(by_rule) == {1, 3, 4}  # rule 2 is paused
    # Rule 1: the third large payment pushes payee 3 -> beneficiary 9 over 20,000,000.
    first = by_rule[1][0]
    assert first.triggering_event.transaction_id == 1002
    assert first.grouping_key == {"payeeId": 3, "beneficiaryId": 9}
    pair = [tx for tx in demo_stream()[:1003] if (tx.payee_id, tx.beneficiary_id) == (3, 9)]
    assert first.aggregate == sum(tx.payment_amount for tx in pair) > 20_000_000
    assert first.events_in_window == len(pair)
    assert first.explanation.startswith("SUM(paymentAmount) = 21,00")
    assert first.explanation.endswith(
        "> 20,000,000 over the last 30 days for payeeId=3, beneficiaryId=9"
    )
    # Rule 3: beneficiary 9 reaches 10,000,000 within a day at the second large payment.
    assert by_rule[3][0].triggering_event.transaction_id == 1001
    assert {a.key for a in by_rule[3]} == {"beneficiaryId=9"}
    # Rule 4: every 100th payment of a type fires, then the count starts again.
    counts = [a.aggregate for a in by_rule[4]]
    assert counts and set(counts) == {100.0}
    per_type = {
        t: sum(1 for a in by_rule[4] if a.key == f"paymentType={t}") for t in ("CRD", "CSH")
    }
    assert per_type == {"CRD": 2000 // 100, "CSH": 1000 // 100}
    assert out.normalized() == oracle([demo_stream()], demo).normalized()
    payload = first.to_json_dict()
    assert payload["ruleId"] == 1 and payload["groupingKey"] == {"payeeId": 3, "beneficiaryId": 9}
    assert payload["triggeringEvent"]["transactionIdStr"] == "1002"
    assert payload["limitOperator"] == ">" and payload["eventsInWindow"] == len(pair)
    assert "payeeId=3" in str(first)


# -- rules known before the start, with a separate (empty) rules source ---------------------------


def test_initial_rules_apply_before_the_first_transaction() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    rule = parse_rule({**DEMO_RULES[0], "limit": 0, "version": 7})
    txs = [Transaction(i, 1000 * i, 1, 2, 5.0, "CRD", 0) for i in range(1, 4)]
    transactions = env.from_collection(txs)
    rules = env.from_collection(
        [parse_rule({"ruleState": "CONTROL", "controlType": "EXPORT_RULES_CURRENT"})]
    )
    streams = build_rules_job(transactions, rules, initial_rules=[rule], out_of_orderness_ms=0)
    alerts, current = CapturingSink(), CapturingSink()
    streams.alerts.sink_to(alerts)
    streams.current_rules.sink_to(current)
    env.execute()
    assert [a.triggering_event.transaction_id for a in alerts.results] == [1, 2, 3]
    assert {a.rule_version for a in alerts.results} == {7}
    assert [r.rule_id for r in current.results] == [1]


def test_cooldown_makes_one_burst_one_alert() -> None:
    rule = parse_rule({**DEMO_RULES[0], "limit": 0, "cooldownSeconds": 60})
    txs = [Transaction(i, 1_000_000 + i * 10_000, 1, 2, 5.0, "CRD", 0) for i in range(13)]
    out = run_job([txs], [rule])
    assert [row[3] for row in out.alerts] == [0, 6, 12]


def test_control_commands_clear_delete_and_stop() -> None:
    rule = parse_rule({**DEMO_RULES[3], "aggregateFieldName": "COUNT_FLINK", "limit": 3})
    t = iter(range(1_000_000, 2_000_000, 1000))

    def txs(n: int) -> list[Transaction]:
        return [
            Transaction(next(t), 0, 1, 1, 1.0, "CRD", 0)._replace(event_time=next(t))
            for _ in range(n)
        ]

    def control(kind: ControlType) -> Rule:
        return parse_rule({"ruleState": "CONTROL", "controlType": kind.value})

    batches: list[Batch] = [
        txs(3),  # the third fires
        control(ControlType.CLEAR_STATE_ALL),
        txs(2),  # counts restarted: no alert
        txs(1),  # fires
        control(ControlType.CLEAR_STATE_ALL_STOP),
        txs(5),  # every rule paused
        rule,  # back in force
        txs(3),  # fires
        control(ControlType.DELETE_RULES_ALL),
        txs(5),
        control(ControlType.EXPORT_RULES_CURRENT),
    ]
    paused = rule.with_state(RuleState.PAUSE)
    batches += [rule, txs(2), paused, rule, txs(2), txs(1)]  # a pause forgets the window
    out = run_job(batches, [rule])
    assert [row[5] for row in out.alerts] == [3, 3, 3, 3]
    assert out.exported == []  # nothing left to export
    assert out.normalized() == oracle(batches, [rule]).normalized()


@pytest.mark.parametrize("parallelism", [1, 2])
def test_export_emits_each_rule_once(parallelism: int) -> None:
    demo = [parse_rule(d) for d in DEMO_RULES]
    export = parse_rule({"ruleState": "CONTROL", "controlType": "EXPORT_RULES_CURRENT"})
    out = run_job([export], demo, parallelism=parallelism)
    assert out.exported == [(1, 0, "ACTIVE"), (2, 0, "PAUSE"), (3, 0, "ACTIVE"), (4, 0, "ACTIVE")]


def test_late_transactions_go_to_the_late_output() -> None:
    rule = parse_rule({**DEMO_RULES[0], "limit": 0})
    on_time = [Transaction(1, 1_000_000, 1, 1, 1.0, "CRD", 0)]
    late = [Transaction(2, 1_000_000 - BOUND - 1, 1, 1, 1.0, "CRD", 0)]
    just_in_time = [Transaction(3, 1_000_000 - BOUND, 1, 1, 1.0, "CRD", 0)]
    out = run_job([on_time, late, just_in_time], [rule])
    assert out.late == [2]
    assert [row[3] for row in out.alerts] == [1, 3]
    assert [row[5] for row in out.alerts] == [1, 1]  # the out-of-order event's window excludes 1


def test_avg_of_no_events_is_no_alert_not_a_crash() -> None:
    rule = parse_rule(
        {**DEMO_RULES[0], "aggregatorFunctionType": "AVG", "limitOperatorType": "<", "limit": 1}
    )
    out = run_job([[Transaction(1, 1_000_000, 1, 1, 0.0, "CRD", 0)]], [rule])
    assert [row[4] for row in out.alerts] == [0.0]
    assert math.isclose(out.raw_alerts[0].aggregate, 0.0)


# -- state cleanup, observed in checkpoints ------------------------------------------------------


def stored_events(checkpoint: Path) -> dict[int, int]:
    """Events kept per rule over all keys, in the rules operator's checkpointed state."""
    from fraudstream.runtime.checkpoints import CheckpointStorage
    from fraudstream.state.base import unpickled

    payload = CheckpointStorage.load(checkpoint).payload
    per_rule: dict[int, int] = {}
    for snapshot in payload["operators"]["rules-dynamic-alert"]:
        state = unpickled(snapshot["state"])
        assert isinstance(state, dict)  # the memory backend's tables
        _kind, table = state.get("rule-windows", ("value", {}))
        for keyed in table.values():
            if isinstance(keyed, tuple):  # a key's only event: (t, rule_id, value, ...)
                for rule_id in keyed[1::2]:
                    per_rule[rule_id] = per_rule.get(rule_id, 0) + 1
                continue
            windows = keyed.windows if hasattr(keyed, "windows") else {keyed.rule_id: keyed}
            for rule_id, window in windows.items():
                per_rule[rule_id] = per_rule.get(rule_id, 0) + len(window)
    return per_rule


def run_cleanup_script(
    checkpoints: Path, *, restore: Path | None = None, errors_aside: bool = False
) -> None:
    """Ten payees, then event time moves on by 10 minutes, then the widest rule goes; a
    checkpoint after each step (chk-1, chk-2, chk-3)."""
    from fraudstream.testing import AdvanceProcessingTime, ManualClock

    narrow = parse_rule({**DEMO_RULES[2], "ruleId": 1, "groupingKeyNames": ["payeeId"],
                         "windowMinutes": 1})  # fmt: skip
    wide = parse_rule({**DEMO_RULES[2], "ruleId": 2, "groupingKeyNames": ["payeeId"],
                       "aggregatorFunctionType": "MAX", "windowMinutes": 43200})  # fmt: skip
    clock = ManualClock(0)
    base = 1_000_000_000

    def burst(start: int, payees: range) -> list[Any]:
        return [Transaction(start + p, start + p, p, 1, 1.0, "CRD", 0) for p in payees]

    tick = AdvanceProcessingTime(1000)  # a checkpoint is due at each tick
    script: list[Any] = [
        *burst(base, range(10)),
        tick,
        *burst(base + 10 * 60_000, range(100, 101)),  # event time moves on by 10 minutes
        tick,
        wide.with_state(RuleState.DELETE),
        tick,
    ]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock).set_batch_size(1)
    env.enable_checkpointing(1000)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoints))
    env.get_checkpoint_config().set_max_retained_checkpoints(10)
    if restore is not None:
        env.restore_from(str(restore))
    strategy = WS.for_bounded_out_of_orderness(Duration.of_millis(BOUND)).with_timestamp_assigner(
        ScriptTime()
    )
    split = env.from_source(ScriptedSource(script, clock), strategy, "script").process(SplitRules())
    streams = build_rules_job(
        split,
        split.get_side_output(RULES_IN),
        initial_rules=[narrow, wide],
        rules_hold_back_time=True,
    )
    alerts = streams.alerts
    if errors_aside:  # the alert function then runs record by record
        alerts = alerts.side_output_on_error(OutputTag("failed"))
    alerts.sink_to(CapturingSink())
    env.execute()


@pytest.mark.parametrize("batches", [True, False], ids=["batch-hooks", "per-record"])
def test_state_is_cleaned_by_timers_and_shrinks_when_the_widest_rule_goes(
    tmp_path: Path, batches: bool
) -> None:
    with contextlib.nullcontext() if batches else per_record_calls():
        run_cleanup_script(tmp_path)
    first, second, third = (tmp_path / f"chk-{n}" for n in (1, 2, 3))
    assert stored_events(first) == {1: 10, 2: 10}
    # The watermark passed the narrow window of the first ten payees: their timers fired.
    assert stored_events(second) == {1: 1, 2: 11}
    # The widest rule is gone: its windows went with it.
    assert stored_events(third) == {1: 1}


def test_state_restored_from_batches_is_cleaned_when_records_come_one_by_one(
    tmp_path: Path,
) -> None:
    # Batch mode keeps one cleanup schedule, not a timer per key, so a checkpoint holds
    # no timers for its keys. Restored where failing records go to a side output (the
    # alert function then runs record by record), those keys are still cleaned up.
    run_cleanup_script(tmp_path / "batches")
    first = tmp_path / "batches" / "chk-1"
    assert stored_events(first) == {1: 10, 2: 10}
    run_cleanup_script(tmp_path / "one-by-one", restore=first, errors_aside=True)
    # Numbered after the restored checkpoint 1.
    second, third, final = (tmp_path / "one-by-one" / f"chk-{n}" for n in (2, 3, 4))
    assert stored_events(second) == {1: 1, 2: 11}
    assert stored_events(third) == {1: 1}
    assert stored_events(final) == {}  # the end of input forgets every key


@pytest.mark.parametrize("batches", [True, False], ids=["batch-hooks", "per-record"])
def test_latency_output_has_one_record_per_transaction(batches: bool) -> None:
    from fraudstream.testing import ManualClock

    demo = [parse_rule(d) for d in DEMO_RULES]
    stream = [tx._replace(ingestion_timestamp=9_000 + i) for i, tx in enumerate(demo_stream())]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(ManualClock(10_000)).set_batch_size(100)
    streams = build_rules_job(
        env.from_collection(stream), env.from_collection([]), initial_rules=demo,
        out_of_orderness_ms=BOUND,
    )  # fmt: skip
    sink = CapturingSink()
    streams.latency.sink_to(sink)
    with contextlib.nullcontext() if batches else per_record_calls():
        env.execute()
    assert sorted(sink.results) == sorted(1_000 - i for i in range(len(stream)))
