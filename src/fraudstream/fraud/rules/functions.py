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

import heapq
import operator
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

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
from fraudstream.fraud.rules.compiled import CLEANUP_GRID_MS, CompiledRule, RuleGroup, cleanup_at
from fraudstream.fraud.rules.model import (
    ControlType,
    Rule,
    RuleState,
)
from fraudstream.fraud.rules.windows import (
    KeyWindows,
    RuleWindow,
    WindowResult,
)
from fraudstream.fraud.transaction import TRANSACTION_FIELDS

if TYPE_CHECKING:  # fraudstream-only (no PyFlink counterpart): not imported at run time
    from fraudstream.datastream.batch import BatchOutput

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

#: Milliseconds from a transaction's ingestion to its evaluation, one per transaction.
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


_EVENT_TIME = operator.itemgetter(TRANSACTION_FIELDS["eventTime"])


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

    def process_element_batch(
        self, values: list[Any], timestamps: list[int] | None, ctx: Any, out: BatchOutput
    ) -> None:
        """``process_element`` for a whole batch (the embedded engine's batch hook).

        The forks come grouping by grouping (all forks of the first grouping, then the
        second's...), each in the batch's order: a key's events keep their order, and
        the alert function meets runs of one grouping.
        """
        groups = self._groups
        if groups is None:
            groups = self._build_groups(ctx)
        watermark = ctx.current_watermark()
        stamps: list[Any] = timestamps if timestamps is not None else [None] * len(values)
        if values and min(map(_EVENT_TIME, values)) <= watermark:
            values, stamps = self._split_late(values, stamps, watermark, out)
        forks = out.values
        fork_stamps = out.timestamps
        for names, getter in groups:
            # ((names, key), value) per transaction, built in C (zip, map, repeat).
            forks.extend(zip(zip(repeat(names), map(getter, values)), values))
            fork_stamps.extend(stamps)

    @staticmethod
    def _split_late(
        values: list[Any], stamps: list[Any], watermark: int, out: BatchOutput
    ) -> tuple[list[Any], list[Any]]:
        """Send transactions at or behind the watermark to the late output; the others."""
        late, late_stamps = out.side(LATE_TAG.tag_id)
        on_time: list[Any] = []
        on_time_stamps: list[Any] = []
        for value, ts in zip(values, stamps):
            if value[1] <= watermark:
                late.append(value)
                late_stamps.append(ts)
            else:
                on_time.append(value)
                on_time_stamps.append(ts)
        return on_time, on_time_stamps

    def process_broadcast_element(
        self, value: Any, ctx: BroadcastProcessFunction.Context
    ) -> Iterator[Any]:
        """Apply a rule change or control command to the broadcast state."""
        exported = self._rules.apply(value, ctx)
        self._groups = None
        if exported is not None and self._export:
            for rule in exported:
                yield CURRENT_RULES_TAG, rule


class DynamicAlertFunction(KeyedBroadcastProcessFunction):
    """Evaluates the rules of a grouping on every event of a key, over incremental windows.

    Order per event: (1) per rule of the grouping that accepts the event, add it to the
    rule's window and compare the aggregate with the limit, (2) an alert honours the
    rule's cooldown, then resets a COUNT_WITH_RESET window, (3) store the key's state
    and make sure its cleanup is scheduled. A key's first event is stored as a compact
    tuple when no rule fires on it (see :class:`RuleGroup`).

    Two ways to run, same state and same alerts:

    * per record (PyFlink, or any engine without batch hooks): ``process_element`` and
      an event-time timer per key (coalesced) that evicts what the watermark has aged
      out and re-arms itself for the oldest remaining event;
    * in batches (the embedded engine, ``datastream.batch``): ``process_keyed_batch``
      reads and writes state by explicit key, and instead of timers the instance keeps
      one schedule (cleanup time -> keys) that ``on_watermark_batch`` sweeps. The
      schedule is rebuilt from the state after a restore.
    """

    def __init__(self, initial_rules: Sequence[Rule] = (), latency: bool = True) -> None:
        self._rules = _RuleSet(initial_rules)
        self._latency = latency
        self._by_group: dict[tuple[str, ...], RuleGroup] | None = None
        self._cooldowns: dict[int, int] = {}
        self._widths: dict[int, int] = {}
        self._first_group: tuple[str, ...] | None = None
        self._schedule: dict[int, list[Any]] = {}
        self._schedule_times: list[int] = []
        self._scheduled = False  # the schedule reflects the state (batch mode)
        self._found: list[RuleAlert] = []
        self._clock: Callable[[], int] = _no_clock

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the per-key windows state."""
        self.windows_state = runtime_context.get_state(WINDOWS_DESCRIPTOR)
        self._by_group = None
        self._schedule = {}
        self._schedule_times = []
        self._scheduled = False

    def _build(self, ctx: Any) -> dict[tuple[str, ...], RuleGroup]:
        compiled: dict[tuple[str, ...], list[CompiledRule]] = {}
        cooldowns: dict[int, int] = {}
        widths: dict[int, int] = {}
        for rule_id in sorted(current := self._rules.current(ctx)):
            rule = current[rule_id]
            if rule.evaluated:
                compiled.setdefault(rule.grouping_key_names, []).append(CompiledRule(rule))
                cooldowns[rule_id] = rule.cooldown_seconds * 1000
                widths[rule_id] = rule.window_ms
        by_group = {names: RuleGroup(rules) for names, rules in compiled.items()}
        self._by_group = by_group
        self._cooldowns = cooldowns
        self._widths = widths
        self._first_group = min(by_group) if by_group else None
        return by_group

    # -- the evaluation, shared by both ways to run --------------------------------------------
    def _evaluate(
        self,
        group: RuleGroup,
        names: tuple[str, ...],
        key_values: Any,
        tx: Any,
        stored: Any,
    ) -> tuple[Any, bool]:
        """Evaluate ``tx`` against ``stored``; the new state and whether windows were created.

        Alerts are appended to ``self._found``, stamped with ``self._clock()`` (both set
        by the caller, once per call or per batch). The new state is a compact tuple (the
        key's first event), a :class:`KeyWindows` (changed in place), or ``None``.
        """
        if stored is None:
            compact = group.first_event(tx)
            if compact is not None:
                return (compact if len(compact) > 1 else None), False
            keyed = KeyWindows()
        elif stored.__class__ is tuple:
            keyed = group.expand(stored)
            keyed.timer = cleanup_at(self._compact_due(stored))  # already scheduled then
        elif stored.__class__ is RuleWindow:
            keyed = KeyWindows.of(stored)
        else:
            keyed = stored
        t = tx[1]
        windows = keyed.windows
        created = False
        for rule in group.rules:
            if rule.filters and not rule.accepts(tx):
                continue
            rule_id = rule.rule_id
            window = windows.get(rule_id)
            if window is None or (
                window.signature is not rule.signature and window.signature != rule.signature
            ):
                window = windows[rule_id] = RuleWindow(rule.rule, rule.signature)
                created = True
            else:
                window.signature = rule.signature  # equal: the same object from now on
            index = rule.field_index
            aggregate, count, start, end = window.add(t, 1.0 if index < 0 else tx[index])
            if aggregate is not None and rule.op(aggregate, rule.limit):
                result = (aggregate, count, start, end)
                self._fired(rule, window, result, (names, key_values), tx)
        return keyed, created

    def _fired(
        self,
        rule: CompiledRule,
        window: RuleWindow,
        result: WindowResult,
        fork: tuple[tuple[str, ...], Any],
        tx: Any,
    ) -> None:
        """The aggregate met the limit: honour the cooldown, alert, reset a counting window.

        ``fork`` is the key: ``(grouping key names, their values)``.
        """
        t = tx[1]
        last = window.last_alert
        if last is not None and t - last < rule.cooldown_ms:
            return
        if rule.cooldown_ms:
            window.last_alert = t
        if rule.resets:
            window.clear()
        aggregate, count, start, end = result
        assert aggregate is not None  # it met the limit
        names, key_values = fork
        self._found.append(
            RuleAlert(
                rule.rule_id,
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
                self._clock(),
            )
        )

    def _compact_due(self, compact: tuple[Any, ...]) -> int:
        """When a compact first event leaves the narrowest window of the rules that took it."""
        widths = self._widths
        narrowest = min((widths.get(compact[i], 0) for i in range(1, len(compact), 2)), default=0)
        return int(compact[0]) + narrowest

    def _cleanup_due(self, keyed: KeyWindows | RuleWindow, now: int) -> int | None:
        """The rounded time the key's windows next need a cleanup, after ``now``."""
        if isinstance(keyed, RuleWindow):
            keyed = KeyWindows.of(keyed)
        due = keyed.next_cleanup(self._cooldowns)
        if due is None:
            return None
        return cleanup_at(max(due, now + 1))  # an expired cooldown: not in the past

    @staticmethod
    def _route(alerts: list[RuleAlert]) -> list[Any]:
        return [(SHADOW_TAG, a) if a.shadow else a for a in alerts]

    # -- per record (PyFlink) ------------------------------------------------------------------
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
        out: list[Any] = []
        if self._latency and names == self._first_group:
            out.append((LATENCY_TAG, timers.current_processing_time() - tx[6]))
        group = by_group.get(names)
        if group is None:
            return out
        state = self.windows_state
        stored = state.value()
        found: list[RuleAlert] = []
        self._found = found
        self._clock = timers.current_processing_time
        new, created = self._evaluate(group, names, key_values, tx, stored)
        if found:
            out.extend(self._route(found))
        if new is None:
            return out
        state.update(new)
        if new.__class__ is tuple:
            timers.register_event_time_timer(cleanup_at(self._compact_due(new)))
        elif new.timer is None or created or stored.__class__ is tuple:
            due = self._cleanup_due(new, tx[1])
            if due is not None and (new.timer is None or due < new.timer):
                new.timer = due
                timers.register_event_time_timer(due)
                state.update(new)
        return out

    def on_timer(
        self, timestamp: int, ctx: KeyedBroadcastProcessFunction.OnTimerContext
    ) -> tuple[()]:
        """Evict aged events of this key; re-arm for the oldest remaining one."""
        state = self.windows_state
        stored = state.value()
        if stored is None:
            return ()
        timers = ctx.timer_service()
        watermark = max(timestamp, timers.current_watermark())
        if watermark >= MAX_WATERMARK:  # end of input: no event can come any more
            state.clear()
            return ()
        if self._by_group is None:
            self._build(ctx)
        new, due = self._clean(stored, timestamp, watermark)
        if new is None:
            state.clear()
            return ()
        state.update(new)
        if due is not None:
            timers.register_event_time_timer(due)
        return ()

    def _clean(self, stored: Any, scheduled: int, watermark: int) -> tuple[Any, int | None]:
        """Cleanup of one key at ``watermark`` (its cleanup was scheduled at ``scheduled``).

        Returns the new state (``None``: forget the key) and when to clean it next
        (``None``: already scheduled, or nothing left).
        """
        if stored.__class__ is tuple:  # keep the rules whose windows still need the event
            t = stored[0]
            widths = self._widths
            kept = [t]
            for i in range(1, len(stored), 2):
                if t + widths.get(stored[i], 0) > watermark:
                    kept.extend(stored[i : i + 2])
            if len(kept) == 1:
                return None, None
            compact = stored if len(kept) == len(stored) else tuple(kept)
            return compact, cleanup_at(self._compact_due(compact))
        if stored.__class__ is RuleWindow:  # a one-rule key: clean it as a KeyWindows
            new, due = self._clean(KeyWindows.of(stored), scheduled, watermark)
            if new is None:
                return None, None
            stored.timer = new.timer
            return stored, due
        keyed: KeyWindows = stored
        if keyed.timer is not None and keyed.timer <= scheduled:
            keyed.timer = None
        keyed.evict(watermark, self._cooldowns)
        if not keyed.windows:
            return None, None
        if keyed.timer is not None:
            return keyed, None
        keyed.timer = self._cleanup_due(keyed, watermark)
        return keyed, keyed.timer

    # -- in batches (the embedded engine) ------------------------------------------------------
    def process_keyed_batch(
        self,
        keys: list[Any],
        values: list[Any],
        timestamps: list[int] | None,
        ctx: Any,
        out: BatchOutput,
    ) -> None:
        """``process_element`` for a whole batch, state by explicit key, no timers."""
        by_group = self._by_group
        if by_group is None:
            by_group = self._build(ctx)
        table = ctx.value_table(WINDOWS_DESCRIPTOR)
        if not self._scheduled:
            self._rebuild_schedule(table)
        clock = ctx.current_processing_time
        # Latency records nobody reads (no consumer of the side output) are not made.
        latency = self._latency and out.consumes(LATENCY_TAG.tag_id)
        first_group = self._first_group if latency else None
        latency_values, latency_stamps = out.side(LATENCY_TAG.tag_id)
        stamps = timestamps if timestamps is not None else [None] * len(values)
        get = table.get
        schedule = self._schedule_key
        evaluate = self._evaluate
        found: list[RuleAlert] = []
        self._found = found
        self._clock = clock
        now = clock()
        counted = 0
        scheduled = self._schedule
        # A dict (memory backend) holds the stored objects themselves: changed in place,
        # they need no write back. Other backends hand out copies.
        write_back = table.__class__ is not dict
        last_due = None
        last_keys: list[Any] = []
        last_names = None
        group: RuleGroup | None = None
        is_first = False
        # The one rule of the run's grouping (if it has one), in locals: read once per run.
        single: CompiledRule | None = None
        sums = False
        single_id = index = width = 0
        op: Callable[[Any, Any], bool] = operator.gt
        limit: Any = None
        signature: Any = None
        for key, value, ts in zip(keys, values, stamps):
            fork, tx = value
            names = fork[0]
            if names is not last_names:  # forks come in runs of one grouping
                last_names = names
                group = by_group.get(names)
                is_first = names == first_group
                single = None if group is None else group.single
                if single is not None:
                    sums, single_id, index, width = (
                        single.sums,
                        single.rule_id,
                        single.field_index,
                        single.width,
                    )
                    op, limit, signature = single.op, single.limit, single.signature
                else:
                    sums = False
            if is_first:
                # The clock is read every 64 transactions (a call per record would cost
                # more than the rest of the latency record): ~0.1 ms at most behind.
                counted += 1
                if not counted & 63:
                    now = clock()
                latency_values.append(now - tx[6])
                latency_stamps.append(ts)
            if group is None:
                continue
            stored = get(key)
            if stored is None:
                if sums:
                    # A key's first event, one SUM/AVG/COUNT rule (most keys): what
                    # first_event and _schedule_key do, unrolled; the bucket of the last
                    # scheduled key is at hand (event times rise, buckets repeat).
                    amount = 1.0 if index < 0 else tx[index]
                    if not op(0.0 + amount, limit):
                        t = tx[1]
                        table[key] = (t, single_id, amount)
                        due = -(-(t + width) // CLEANUP_GRID_MS) * CLEANUP_GRID_MS
                        if due != last_due:
                            keys_then = scheduled.get(due)
                            if keys_then is None:
                                keys_then = scheduled[due] = []
                                heapq.heappush(self._schedule_times, due)
                            last_keys = keys_then
                            last_due = due
                        last_keys.append(key)
                        continue
                compact = group.first_event(tx)
                if compact is not None:  # the usual first event: no window objects
                    if len(compact) == group.full:
                        table[key] = compact
                        schedule(key, cleanup_at(compact[0] + group.narrowest))
                    elif len(compact) > 1:
                        table[key] = compact
                        schedule(key, cleanup_at(self._compact_due(compact)))
                    continue
            elif single is not None:
                window: RuleWindow | None = None
                kind = stored.__class__
                if kind is RuleWindow:
                    if stored.timer is not None and stored.rule_id == single_id:
                        window = stored
                elif kind is tuple:
                    timer = cleanup_at(self._compact_due(stored))
                    window = group.expand_single(stored, timer)
                    if window is not None:  # the key's second event: from now on a window
                        stored = window
                        table[key] = window
                elif stored.timer is not None:
                    window = stored.windows.get(single_id)
                if window is not None:
                    if window.signature is not signature and window.signature == signature:
                        window.signature = signature  # restored: the same object from now on
                    if window.signature is signature:
                        # A key's later event, one rule without filters (the usual case):
                        # _evaluate's steps for it, with its cleanup already scheduled.
                        result = window.add(tx[1], 1.0 if index < 0 else tx[index])
                        aggregate = result[0]
                        if aggregate is not None and op(aggregate, limit):
                            self._fired(single, window, result, fork, tx)
                            self._emit_alerts(found, ts, out)
                        if write_back:
                            table[key] = stored
                        continue
            new, created = evaluate(group, names, fork[1], tx, stored)
            if found:
                self._emit_alerts(found, ts, out)
            if new is None:
                continue
            if new.timer is None or created or stored.__class__ is tuple:
                due = self._cleanup_due(new, tx[1])
                if due is not None and (new.timer is None or due < new.timer):
                    new.timer = due
                    schedule(key, due)
            table[key] = new

    def _emit_alerts(self, found: list[RuleAlert], ts: int | None, out: BatchOutput) -> None:
        for alert in found:
            if alert.shadow:
                shadow_values, shadow_stamps = out.side(SHADOW_TAG.tag_id)
                shadow_values.append(alert)
                shadow_stamps.append(ts)
            else:
                out.values.append(alert)
                out.timestamps.append(ts)
        found.clear()

    def _schedule_key(self, key: Any, due: int) -> None:
        keys = self._schedule.get(due)
        if keys is None:
            self._schedule[due] = [key]
            heapq.heappush(self._schedule_times, due)
        else:
            keys.append(key)

    def _rebuild_schedule(self, table: Any) -> None:
        """After a restore: schedule every key's cleanup from its state."""
        self._scheduled = True
        for key in list(table):
            stored = table.get(key)
            if stored.__class__ is tuple:
                self._schedule_key(key, cleanup_at(self._compact_due(stored)))
            elif stored is not None:
                due = stored.timer
                if due is None:
                    due = stored.timer = self._cleanup_due(stored, -(2**62))
                    table[key] = stored
                if due is not None:
                    self._schedule_key(key, due)

    def on_watermark_batch(self, watermark: int, ctx: Any, out: BatchOutput) -> None:
        """Clean up the keys whose scheduled cleanup the watermark has reached."""
        table = ctx.value_table(WINDOWS_DESCRIPTOR)
        if self._by_group is None:
            self._build(ctx)
        if not self._scheduled:
            self._rebuild_schedule(table)
        if watermark >= MAX_WATERMARK:  # end of input: no event can come any more
            if isinstance(table, dict):
                table.clear()
            else:
                for key in list(table):
                    table.pop(key, None)
            self._schedule.clear()
            self._schedule_times.clear()
            return
        times = self._schedule_times
        while times and times[0] <= watermark:
            scheduled = heapq.heappop(times)
            for key in self._schedule.pop(scheduled):
                stored = table.get(key)
                if stored is None:
                    continue
                if stored.__class__ is not tuple and stored.timer != scheduled:
                    continue  # rescheduled meanwhile: another entry stands for it
                new, due = self._clean(stored, scheduled, watermark)
                if new is None:
                    table.pop(key, None)
                    continue
                if due is not None:
                    self._schedule_key(key, due)
                table[key] = new

    # -- rule changes --------------------------------------------------------------------------
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


def _no_clock() -> int:
    return 0


def _clear_state(key: Any, state: Any) -> None:
    state.clear()


class _Dropper:
    """Removes the windows of some rules from a key's state (picklable, unlike a lambda)."""

    def __init__(self, rule_ids: frozenset[int]) -> None:
        self.rule_ids = rule_ids

    def __call__(self, key: Any, state: Any) -> None:
        stored = state.value()
        if stored is None:
            return
        if stored.__class__ is tuple:  # a compact first event: keep the other rules' pairs
            kept = [stored[0]]
            for i in range(1, len(stored), 2):
                if stored[i] not in self.rule_ids:
                    kept.extend(stored[i : i + 2])
            if len(kept) > 1:
                state.update(tuple(kept))
            else:
                state.clear()
            return
        if stored.__class__ is RuleWindow:  # a one-rule key
            if stored.rule_id in self.rule_ids:
                state.clear()
            return
        keyed: KeyWindows = stored
        for rule_id in self.rule_ids:
            keyed.windows.pop(rule_id, None)
        if keyed.windows:
            state.update(keyed)
        else:
            state.clear()
