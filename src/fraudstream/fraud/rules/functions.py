"""The two functions of the rules job: dynamic keying and dynamic alerting.

``DynamicKeyFunction`` (a ``BroadcastProcessFunction``) forks each transaction once
per *grouping* of the rules in force (ACTIVE or SHADOW), keyed by that grouping's
values: rules with the same ``groupingKeyNames`` share one fork, as the demo's article
suggests. ``DynamicAlertFunction`` (a ``KeyedBroadcastProcessFunction``) keeps, per
key, one :class:`~fraudstream.fraud.rules.windows.KeyWindows` object in a ``ValueState``
(a window per rule) and evaluates every rule of that grouping on every event.

Rules known before the job starts (``initial_rules``) are in force before the first
transaction: both functions carry them and read them until the first record of the
rules stream arrives; that record first copies them into the broadcast state (marking
it seeded), then applies itself. A restored job reads the seeded broadcast state of
its checkpoint.

Control commands: CLEAR_STATE_ALL drops every key's windows; CLEAR_STATE_ALL_STOP does
that and pauses every rule (evaluation stops until rules are sent again);
DELETE_RULES_ALL removes every rule (and their windows); EXPORT_RULES_CURRENT emits
the rules in force to the ``current-rules`` side output (from the first parallel
instance only, so once).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any

from fraudstream.common.typeinfo import Types
from fraudstream.common.watermark_strategy import MAX_WATERMARK
from fraudstream.datastream.functions import (
    BroadcastProcessFunction,
    KeyedBroadcastProcessFunction,
    RuntimeContext,
)
from fraudstream.datastream.output_tag import OutputTag
from fraudstream.datastream.state import MapStateDescriptor, ValueStateDescriptor
from fraudstream.fraud.rules.alert import RuleAlert
from fraudstream.fraud.rules.model import (
    COUNT_FIELDS,
    ControlType,
    Rule,
    RuleState,
)
from fraudstream.fraud.rules.windows import KeyWindows, RuleWindow
from fraudstream.fraud.transaction import TRANSACTION_FIELDS

__all__ = [
    "CURRENT_RULES_TAG",
    "LATENCY_TAG",
    "LATE_TAG",
    "RULES_DESCRIPTOR",
    "RULES_META_DESCRIPTOR",
    "SHADOW_TAG",
    "WINDOWS_DESCRIPTOR",
    "DynamicAlertFunction",
    "DynamicKeyFunction",
]

RULES_DESCRIPTOR = MapStateDescriptor("rules", Types.LONG(), Types.PICKLED_BYTE_ARRAY())
RULES_META_DESCRIPTOR = MapStateDescriptor("rules-meta", Types.STRING(), Types.BOOLEAN())
WINDOWS_DESCRIPTOR = ValueStateDescriptor("rule-windows", Types.PICKLED_BYTE_ARRAY())

#: Milliseconds from a transaction's ingestion to its evaluation, one per fork.
LATENCY_TAG = OutputTag("latency", Types.LONG())
#: Transactions behind the watermark (their windows may already be cleaned up).
LATE_TAG = OutputTag("late-transactions", Types.PICKLED_BYTE_ARRAY())
#: The rules in force, on EXPORT_RULES_CURRENT.
CURRENT_RULES_TAG = OutputTag("current-rules", Types.PICKLED_BYTE_ARRAY())
#: Alerts of SHADOW rules: recorded, never published as live alerts.
SHADOW_TAG = OutputTag("shadow-alerts", Types.PICKLED_BYTE_ARRAY())

_SEEDED = "seeded"


class _RuleSet:
    """Reads the rules in force: the initial ones until the broadcast state is seeded."""

    def __init__(self, initial_rules: Sequence[Rule]) -> None:
        self.initial = {r.rule_id: r for r in initial_rules if not r.is_control}

    def current(self, ctx: Any) -> dict[int, Rule]:
        if ctx.get_broadcast_state(RULES_META_DESCRIPTOR).contains(_SEEDED):
            return dict(ctx.get_broadcast_state(RULES_DESCRIPTOR).items())
        return dict(self.initial)

    def apply(self, rule: Rule, ctx: Any) -> list[Rule] | None:
        """Change the broadcast state for ``rule``; the rules to export, for EXPORT."""
        rules = ctx.get_broadcast_state(RULES_DESCRIPTOR)
        meta = ctx.get_broadcast_state(RULES_META_DESCRIPTOR)
        if not meta.contains(_SEEDED):
            for rule_id, initial in self.initial.items():
                rules.put(rule_id, initial)
            meta.put(_SEEDED, True)
        if rule.is_control:
            control = rule.control_type
            if control is ControlType.DELETE_RULES_ALL:
                rules.clear()
            elif control is ControlType.CLEAR_STATE_ALL_STOP:
                for rule_id, existing in rules.items():
                    if existing.rule_state is not RuleState.PAUSE:
                        rules.put(rule_id, existing.with_state(RuleState.PAUSE))
            elif control is ControlType.EXPORT_RULES_CURRENT:
                return [r for _, r in sorted(rules.items(), key=lambda item: item[0])]
            return None
        if rule.rule_state is RuleState.DELETE:
            rules.remove(rule.rule_id)
        else:
            rules.put(rule.rule_id, rule)
        return None


def _grouping_getter(names: tuple[str, ...]) -> Any:
    return operator.itemgetter(*(TRANSACTION_FIELDS[n] for n in names))


class DynamicKeyFunction(BroadcastProcessFunction):
    """Forks each transaction once per grouping of the rules in force.

    Emits ``((grouping_key_names, key_values), transaction)``; ``key_values`` is the
    value itself for a one-name grouping, else a tuple. Transactions at or behind the
    watermark go to :data:`LATE_TAG` instead.
    """

    def __init__(self, initial_rules: Sequence[Rule] = ()) -> None:
        self._rules = _RuleSet(initial_rules)
        self._groups: list[tuple[tuple[str, ...], Any]] | None = None
        self._export = True

    def open(self, runtime_context: RuntimeContext) -> None:
        """Only the first parallel instance exports the rules (they are the same on all)."""
        self._export = runtime_context.get_index_of_this_subtask() == 0
        self._groups = None

    def _build_groups(self, ctx: Any) -> list[tuple[tuple[str, ...], Any]]:
        names: dict[tuple[str, ...], Any] = {}
        for rule in self._rules.current(ctx).values():
            if rule.evaluated and rule.grouping_key_names not in names:
                names[rule.grouping_key_names] = _grouping_getter(rule.grouping_key_names)
        self._groups = sorted(names.items())
        return self._groups

    def process_element(
        self, value: Any, ctx: BroadcastProcessFunction.ReadOnlyContext
    ) -> list[Any]:
        """Fork ``value`` per grouping (or route it to the late output)."""
        if value[1] <= ctx.current_watermark():
            return [(LATE_TAG, value)]
        groups = self._groups
        if groups is None:
            groups = self._build_groups(ctx)
        return [((names, getter(value)), value) for names, getter in groups]

    def process_broadcast_element(
        self, value: Any, ctx: BroadcastProcessFunction.Context
    ) -> Iterator[Any]:
        """Apply a rule change or control command to the broadcast state."""
        exported = self._rules.apply(value, ctx)
        self._groups = None
        if exported is not None and self._export:
            for rule in exported:
                yield CURRENT_RULES_TAG, rule


class _CompiledRule:
    """What the hot path needs of a rule, looked up once per rule change."""

    __slots__ = (
        "cooldown_ms",
        "field_index",
        "filters",
        "label",
        "limit",
        "op",
        "resets",
        "rule",
        "rule_id",
        "shadow",
        "signature",
        "symbol",
    )

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.rule_id = rule.rule_id
        field = rule.aggregate_field_name
        self.field_index = -1 if field in COUNT_FIELDS else TRANSACTION_FIELDS[field]
        self.resets = field == "COUNT_WITH_RESET_FLINK"
        self.filters = rule.filters
        self.op = rule.limit_operator_type.apply
        self.symbol = rule.limit_operator_type.symbol
        self.limit = rule.limit
        self.label = rule.aggregate_label()
        self.cooldown_ms = rule.cooldown_seconds * 1000
        self.shadow = rule.rule_state is RuleState.SHADOW
        self.signature = rule.collection_signature()


class DynamicAlertFunction(KeyedBroadcastProcessFunction):
    """Evaluates the rules of a grouping on every event of a key, over incremental windows.

    Order per event: (1) evict what the watermark has aged out, (2) per rule of the
    grouping that accepts the event, add it to the rule's window and compare the
    aggregate with the limit, (3) an alert honours the rule's cooldown, then resets a
    COUNT_WITH_RESET window, (4) store the key's windows and make sure a cleanup timer
    is pending. The timer evicts and re-arms itself for the oldest remaining event.
    """

    def __init__(self, initial_rules: Sequence[Rule] = (), latency: bool = True) -> None:
        self._rules = _RuleSet(initial_rules)
        self._latency = latency
        self._by_group: dict[tuple[str, ...], list[_CompiledRule]] | None = None
        self._cooldowns: dict[int, int] = {}
        self._first_group: tuple[str, ...] | None = None

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the per-key windows state."""
        self.windows_state = runtime_context.get_state(WINDOWS_DESCRIPTOR)
        self._by_group = None

    def _build(self, ctx: Any) -> dict[tuple[str, ...], list[_CompiledRule]]:
        by_group: dict[tuple[str, ...], list[_CompiledRule]] = {}
        cooldowns: dict[int, int] = {}
        for rule_id in sorted(current := self._rules.current(ctx)):
            rule = current[rule_id]
            if rule.evaluated:
                by_group.setdefault(rule.grouping_key_names, []).append(_CompiledRule(rule))
                cooldowns[rule_id] = rule.cooldown_seconds * 1000
        self._by_group = by_group
        self._cooldowns = cooldowns
        self._first_group = min(by_group) if by_group else None
        return by_group

    def process_element(
        self, value: Any, ctx: KeyedBroadcastProcessFunction.ReadOnlyContext
    ) -> list[Any] | tuple[()]:
        """Evaluate the grouping's rules on one transaction of the current key.

        Returns its outputs as a list (no generator on this hot path; most calls emit
        nothing). One latency record per transaction: from its first grouping's fork.
        """
        (names, key_values), tx = value
        by_group = self._by_group
        if by_group is None:
            by_group = self._build(ctx)
        timers = ctx.timer_service()
        out: list[Any] | tuple[()] = ()
        if self._latency and names == self._first_group:
            out = [(LATENCY_TAG, timers.current_processing_time() - tx[6])]
        compiled = by_group.get(names)
        if not compiled:
            return out
        state = self.windows_state
        keyed: KeyWindows | None = state.value()
        if keyed is None:
            keyed = KeyWindows()
        t = tx[1]
        windows = keyed.windows
        created = False
        for rule in compiled:
            if rule.filters and not all(f.accepts(tx) for f in rule.filters):
                continue
            rule_id = rule.rule_id
            window = windows.get(rule_id)
            if window is None or (
                window.signature is not rule.signature and window.signature != rule.signature
            ):
                window = windows[rule_id] = RuleWindow(rule.rule, rule.signature)
                created = True
            index = rule.field_index
            aggregate, count, start, end = window.add(t, 1.0 if index < 0 else tx[index])
            if aggregate is None or not rule.op(aggregate, rule.limit):
                continue
            last = window.last_alert
            if last is not None and t - last < rule.cooldown_ms:
                continue
            if rule.cooldown_ms:
                window.last_alert = t
            if rule.resets:
                window.clear()
            alert = RuleAlert(
                rule_id,
                rule.rule.version,
                names,
                key_values,
                tx,
                aggregate,
                rule.limit,
                rule.symbol,
                rule.label,
                start,
                end,
                rule.rule.window_minutes,
                count,
                rule.shadow,
                timers.current_processing_time(),
            )
            if not out:
                out = []
            out.append((SHADOW_TAG, alert) if rule.shadow else alert)
        state.update(keyed)
        if keyed.timer is None or created:
            self._arm(keyed, timers, t)
        return out

    def _arm(self, keyed: KeyWindows, timers: Any, now: int) -> None:
        """Register the cleanup timer for the oldest stored event (coalesced per key)."""
        due = keyed.next_cleanup(self._cooldowns)
        if due is None:
            return
        # Round up to a slack of 1/16 of the time still to wait (at least a second): a hot
        # key's timer fires a few times per window, not once per event; state lives at
        # most that much longer.
        due = max(due, now + 1)  # an expired cooldown must not re-arm in the past forever
        slack = max(1000, (due - now) // 16)
        due = -(-due // slack) * slack
        if keyed.timer is None or due < keyed.timer:
            keyed.timer = due
            timers.register_event_time_timer(due)

    def on_timer(
        self, timestamp: int, ctx: KeyedBroadcastProcessFunction.OnTimerContext
    ) -> tuple[()]:
        """Evict aged events of this key; re-arm for the oldest remaining one."""
        state = self.windows_state
        keyed: KeyWindows | None = state.value()
        if keyed is None:
            return ()
        timers = ctx.timer_service()
        watermark = max(timestamp, timers.current_watermark())
        if watermark >= MAX_WATERMARK:  # end of input: no event can come any more
            state.clear()
            return ()
        if self._by_group is None:
            self._build(ctx)
        if keyed.timer is not None and keyed.timer <= timestamp:
            keyed.timer = None
        keyed.evict(watermark, self._cooldowns)
        if not keyed.windows:
            state.clear()
            return ()
        if keyed.timer is None:
            self._arm(keyed, timers, watermark)
        state.update(keyed)
        return ()

    def process_broadcast_element(
        self, value: Any, ctx: KeyedBroadcastProcessFunction.Context
    ) -> Iterator[Any]:
        """Apply a rule change; drop windows that no longer belong to a rule in force."""
        before = self._rules.current(ctx)
        self._rules.apply(value, ctx)
        after = self._rules.current(ctx)
        self._by_group = None
        control = value.control_type if value.is_control else None
        if control in (ControlType.CLEAR_STATE_ALL, ControlType.CLEAR_STATE_ALL_STOP):
            ctx.apply_to_keyed_state(WINDOWS_DESCRIPTOR, _clear_state)
        else:
            stale = set()
            for rule_id, old in before.items():
                new = after.get(rule_id)
                if old.evaluated and (
                    new is None
                    or not new.evaluated
                    or new.collection_signature() != old.collection_signature()
                ):
                    stale.add(rule_id)
            if stale:
                ctx.apply_to_keyed_state(WINDOWS_DESCRIPTOR, _Dropper(frozenset(stale)))
        yield from ()


def _clear_state(key: Any, state: Any) -> None:
    state.clear()


class _Dropper:
    """Removes the windows of some rules from a key's state (picklable, unlike a lambda)."""

    def __init__(self, rule_ids: frozenset[int]) -> None:
        self.rule_ids = rule_ids

    def __call__(self, key: Any, state: Any) -> None:
        keyed: KeyWindows | None = state.value()
        if keyed is None:
            return
        for rule_id in self.rule_ids:
            keyed.windows.pop(rule_id, None)
        if keyed.windows:
            state.update(keyed)
        else:
            state.clear()
