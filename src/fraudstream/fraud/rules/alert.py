"""Alerts of the rules engine, which explain themselves."""

from __future__ import annotations

from typing import Any, NamedTuple

from fraudstream.fraud.rules.model import format_number, format_window
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction

__all__ = ["RuleAlert", "format_key", "transaction_json"]

_SAFE_INT = 2**53


def transaction_json(tx: Any) -> dict[str, Any]:
    """A transaction as camelCase JSON fields; ids also as strings (exact in browsers)."""
    out = {name: tx[index] for name, index in TRANSACTION_FIELDS.items()}
    out["transactionIdStr"] = str(tx[0])
    out["payeeIdStr"] = str(tx[2])
    out["beneficiaryIdStr"] = str(tx[3])
    return out


def format_key(names: tuple[str, ...], values: Any) -> str:
    """``payeeId=17;beneficiaryId=4211`` (the demo's key, without braces)."""
    if len(names) == 1:
        return f"{names[0]}={values}"
    return ";".join(f"{n}={v}" for n, v in zip(names, values))


class RuleAlert(NamedTuple):
    """A rule fired for a key on a transaction.

    A tuple (cheap to create on the hot path); the explanation is built on demand.
    """

    rule_id: int
    rule_version: int
    grouping_key_names: tuple[str, ...]
    grouping_key_values: Any  # the value for one name, a tuple for several
    triggering_event: Transaction
    aggregate: float
    limit: float
    limit_operator: str  # the symbol: >, >=, <, <=, =, !=
    aggregate_label: str  # SUM(paymentAmount), COUNT(*) ...
    window_start: int
    window_end: int
    window_minutes: int
    events_in_window: int
    shadow: bool
    alert_time: int

    @property
    def grouping_key(self) -> dict[str, Any]:
        """The key as ``{name: value}``."""
        names = self.grouping_key_names
        if len(names) == 1:
            return {names[0]: self.grouping_key_values}
        return dict(zip(names, self.grouping_key_values))

    @property
    def key(self) -> str:
        """The key as text, ``payeeId=17;beneficiaryId=4211``."""
        return format_key(self.grouping_key_names, self.grouping_key_values)

    @property
    def explanation(self) -> str:
        """``SUM(paymentAmount) = 20,000,312.50 > 20,000,000 over the last 30 days for ...``."""
        key = ", ".join(f"{n}={v}" for n, v in self.grouping_key.items())
        return (
            f"{self.aggregate_label} = {format_number(self.aggregate)} {self.limit_operator} "
            f"{format_number(self.limit)} over the last {format_window(self.window_minutes)} "
            f"for {key}"
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready camelCase fields."""
        key = {
            name: (str(value) if isinstance(value, int) and abs(value) >= _SAFE_INT else value)
            for name, value in self.grouping_key.items()
        }
        return {
            "ruleId": self.rule_id,
            "ruleVersion": self.rule_version,
            "groupingKey": key,
            "key": self.key,
            "triggeringEvent": transaction_json(self.triggering_event),
            "aggregate": self.aggregate,
            "limit": self.limit,
            "limitOperator": self.limit_operator,
            "windowStart": self.window_start,
            "windowEnd": self.window_end,
            "eventsInWindow": self.events_in_window,
            "explanation": self.explanation,
            "shadow": self.shadow,
            "alertTime": self.alert_time,
        }

    def __str__(self) -> str:
        prefix = "SHADOW " if self.shadow else ""
        return (
            f"{prefix}Alert rule {self.rule_id} v{self.rule_version} on transaction "
            f"{self.triggering_event[0]}: {self.explanation}"
        )
