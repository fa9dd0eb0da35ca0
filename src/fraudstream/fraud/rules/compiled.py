"""The rules in force, compiled for the alert function's hot path.

A :class:`CompiledRule` holds what evaluating one rule needs, looked up once per rule
change; a :class:`RuleGroup` holds the rules of one grouping and knows the compact form
of a key's first event (see its docstring).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from fraudstream.fraud.rules.model import COUNT_FIELDS, LimitOperator, Rule, RuleState
from fraudstream.fraud.rules.windows import (
    SUMMED_KINDS,
    KeyWindows,
    RuleWindow,
    kind_of,
    single_event_aggregate,
)
from fraudstream.fraud.transaction import TRANSACTION_FIELDS

__all__ = ["CLEANUP_GRID_MS", "CompiledRule", "RuleGroup", "cleanup_at"]

#: ``value <op> limit`` as built-in functions (a Python method call costs more).
_COMPARE: dict[LimitOperator, Callable[[Any, Any], bool]] = {
    LimitOperator.EQUAL: operator.eq,
    LimitOperator.NOT_EQUAL: operator.ne,
    LimitOperator.GREATER_EQUAL: operator.ge,
    LimitOperator.LESS_EQUAL: operator.le,
    LimitOperator.GREATER: operator.gt,
    LimitOperator.LESS: operator.lt,
}


class CompiledRule:
    """What the hot path needs of a rule, looked up once per rule change."""

    __slots__ = (
        "cooldown_ms",
        "field_index",
        "filters",
        "kind",
        "label",
        "limit",
        "op",
        "resets",
        "rule",
        "rule_id",
        "shadow",
        "signature",
        "sums",
        "symbol",
        "width",
    )

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.rule_id = rule.rule_id
        field = rule.aggregate_field_name
        self.field_index = -1 if field in COUNT_FIELDS else TRANSACTION_FIELDS[field]
        self.resets = field == "COUNT_WITH_RESET_FLINK"
        self.filters = rule.filters
        self.op = _COMPARE[rule.limit_operator_type]
        self.symbol = rule.limit_operator_type.symbol
        self.limit = rule.limit
        self.label = rule.aggregate_label()
        self.cooldown_ms = rule.cooldown_seconds * 1000
        self.shadow = rule.rule_state is RuleState.SHADOW
        self.signature = rule.collection_signature()
        self.kind = kind_of(rule)
        self.sums = self.kind in SUMMED_KINDS  # one event's aggregate: 0.0 + value
        self.width = rule.window_ms

    def accepts(self, tx: Any) -> bool:
        """Whether the rule's filters let ``tx`` into its windows."""
        return all(f.accepts(tx) for f in self.filters)


class RuleGroup:
    """The rules in force of one grouping, and how to keep a key's first event.

    Most keys of a fine grouping (payee and beneficiary) see one event per window. Such
    a key's state is a plain tuple ``(t, rule_id, value, rule_id, value, ...)`` - one
    pair per rule that took the event - instead of a window object per rule: a tenth of
    the memory and no objects for the garbage collector to scan. The key's second event
    expands it into :class:`KeyWindows` (see :meth:`expand`).
    """

    __slots__ = ("by_id", "full", "narrowest", "rules", "single")

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        self.by_id = {r.rule_id: r for r in rules}
        #: a compact event of this length holds every rule; then it ages out of a first
        #: window ``narrowest`` ms after its event time
        self.full = 1 + 2 * len(rules)
        self.narrowest = min(r.width for r in rules)
        only = rules[0] if len(rules) == 1 else None
        self.single = only if only is not None and not only.filters else None

    def first_event(self, tx: Any) -> tuple[Any, ...] | None:
        """A key's first event as a compact tuple; ``None`` when some rule fires on it.

        A firing rule may need a cooldown or a reset: that key takes the general path.
        """
        rule = self.single
        if rule is not None:  # the usual case, unrolled
            index = rule.field_index
            value = 1.0 if index < 0 else tx[index]
            if rule.op(single_event_aggregate(rule.kind, value), rule.limit):
                return None
            return (tx[1], rule.rule_id, value)
        entry: list[Any] = [tx[1]]
        for rule in self.rules:
            if rule.filters and not rule.accepts(tx):
                continue
            index = rule.field_index
            value = 1.0 if index < 0 else tx[index]
            if rule.op(single_event_aggregate(rule.kind, value), rule.limit):
                return None
            entry.append(rule.rule_id)
            entry.append(value)
        return tuple(entry)

    def expand_single(self, compact: tuple[Any, ...], timer: int) -> RuleWindow | None:
        """A one-rule grouping's compact first event as that rule's window (or ``None``).

        ``timer`` is the key's cleanup already scheduled for the compact event.
        """
        rule = self.single
        if rule is None or len(compact) != 3 or compact[1] != rule.rule_id:
            return None
        window = RuleWindow(rule.rule, rule.signature)
        window.add(compact[0], compact[2])
        window.timer = timer
        return window

    def expand(self, compact: tuple[Any, ...]) -> KeyWindows:
        """The windows a compact first event stands for (rules no longer in force dropped)."""
        keyed = KeyWindows()
        t = compact[0]
        for i in range(1, len(compact), 2):
            rule = self.by_id.get(compact[i])
            if rule is not None:
                window = keyed.windows[rule.rule_id] = RuleWindow(rule.rule, rule.signature)
                window.add(t, compact[i + 1])
        return keyed


#: Cleanup times are rounded up to a multiple of this (event-time ms), so that keys share
#: sweep buckets and timers; state lives at most this much longer than its windows need.
CLEANUP_GRID_MS = 1000


def cleanup_at(due: int) -> int:
    """``due`` rounded up to the cleanup grid."""
    return -(-due // CLEANUP_GRID_MS) * CLEANUP_GRID_MS
