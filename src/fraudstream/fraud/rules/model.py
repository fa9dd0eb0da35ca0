"""The rule model: the demo's JSON rules (and its CSV form), parsed and validated.

A rule arrives as JSON (``parse_rule``) with the demo's camelCase fields (DESIGN.md §2)
plus optional extensions that leave the demo's rules valid: the aggregators
``COUNT_DISTINCT`` and ``STDDEV``, ``filters`` on transaction fields, a per-key alert
``cooldownSeconds``, the rule state ``SHADOW``, a ``description`` and a ``version``.
Validation collects every bad field at once and raises
:class:`~fraudstream.exceptions.RuleValidationError` with ``field -> message``.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fraudstream.exceptions import RuleValidationError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS

__all__ = [
    "COUNT_FIELDS",
    "DEMO_RULES",
    "MAX_RULE_BYTES",
    "MAX_WINDOW_MINUTES",
    "Aggregator",
    "ControlType",
    "LimitOperator",
    "Rule",
    "RuleFilter",
    "RuleState",
    "format_number",
    "format_window",
    "parse_rule",
    "parse_rule_csv",
    "parse_rules",
]

#: Pseudo-fields of the demo: each event counts 1; the second restarts after an alert.
COUNT_FIELDS = ("COUNT_FLINK", "COUNT_WITH_RESET_FLINK")
#: A rule document larger than this is refused before parsing.
MAX_RULE_BYTES = 64 * 1024
#: The widest window accepted: one year (the demo's rules go up to 30 days).
MAX_WINDOW_MINUTES = 366 * 24 * 60
#: The largest limit magnitude accepted (beyond it floats stop being exact integers).
MAX_LIMIT = 1e18
#: Rule ids stay exact in browsers (JSON numbers up to 2**53).
MAX_RULE_ID = 2**53
MAX_COOLDOWN_SECONDS = 366 * 24 * 3600
MAX_FILTERS = 16
_STRING_FIELDS = frozenset({"paymentType"})


class RuleState(str, enum.Enum):
    """Whether a rule is evaluated, and how its alerts are published."""

    ACTIVE = "ACTIVE"
    PAUSE = "PAUSE"
    DELETE = "DELETE"
    CONTROL = "CONTROL"
    #: Evaluated and recorded, never published as a live alert (alerts carry shadow=true).
    SHADOW = "SHADOW"


class ControlType(str, enum.Enum):
    """Commands carried by rules whose state is CONTROL."""

    CLEAR_STATE_ALL = "CLEAR_STATE_ALL"
    CLEAR_STATE_ALL_STOP = "CLEAR_STATE_ALL_STOP"
    DELETE_RULES_ALL = "DELETE_RULES_ALL"
    EXPORT_RULES_CURRENT = "EXPORT_RULES_CURRENT"


class Aggregator(str, enum.Enum):
    """How the window's values are combined."""

    SUM = "SUM"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"
    COUNT_DISTINCT = "COUNT_DISTINCT"
    STDDEV = "STDDEV"


class LimitOperator(str, enum.Enum):
    """How the aggregate is compared with the limit."""

    EQUAL = "EQUAL"
    NOT_EQUAL = "NOT_EQUAL"
    GREATER_EQUAL = "GREATER_EQUAL"
    LESS_EQUAL = "LESS_EQUAL"
    GREATER = "GREATER"
    LESS = "LESS"

    @property
    def symbol(self) -> str:
        """The operator as the demo's CSV rules write it (``>=``...)."""
        return _SYMBOLS[self]

    def apply(self, value: float, limit: float) -> bool:
        """Whether ``value <op> limit``."""
        if self is LimitOperator.GREATER:
            return value > limit
        if self is LimitOperator.GREATER_EQUAL:
            return value >= limit
        if self is LimitOperator.LESS:
            return value < limit
        if self is LimitOperator.LESS_EQUAL:
            return value <= limit
        if self is LimitOperator.EQUAL:
            return value == limit
        return value != limit


_SYMBOLS = {
    LimitOperator.EQUAL: "=",
    LimitOperator.NOT_EQUAL: "!=",
    LimitOperator.GREATER_EQUAL: ">=",
    LimitOperator.LESS_EQUAL: "<=",
    LimitOperator.GREATER: ">",
    LimitOperator.LESS: "<",
}
_FROM_SYMBOL = {symbol: op for op, symbol in _SYMBOLS.items()} | {"==": LimitOperator.EQUAL}


@dataclass(frozen=True)
class RuleFilter:
    """Only transactions whose ``field <operator> value`` holds enter the rule's windows."""

    field: str
    operator: LimitOperator
    value: float | str

    def accepts(self, tx: Sequence[Any]) -> bool:
        """Whether transaction ``tx`` passes this filter."""
        actual = tx[TRANSACTION_FIELDS[self.field]]
        op = self.operator
        if op is LimitOperator.EQUAL:
            return bool(actual == self.value)
        if op is LimitOperator.NOT_EQUAL:
            return bool(actual != self.value)
        return op.apply(actual, self.value)  # type: ignore[arg-type]

    def to_json_dict(self) -> dict[str, Any]:
        """The filter on the wire."""
        return {"field": self.field, "operator": self.operator.value, "value": self.value}

    def describe(self) -> str:
        """``paymentType = "CRD"``."""
        shown = json.dumps(self.value) if isinstance(self.value, str) else format_number(self.value)
        return f"{self.field} {self.operator.symbol} {shown}"


@dataclass(frozen=True)
class Rule:
    """One fraud rule, or a control command (``rule_state`` CONTROL with ``control_type``)."""

    rule_id: int
    rule_state: RuleState
    grouping_key_names: tuple[str, ...] = ()
    aggregate_field_name: str = ""
    aggregator_function_type: Aggregator = Aggregator.SUM
    limit_operator_type: LimitOperator = LimitOperator.GREATER
    limit: float = 0.0
    window_minutes: int = 0
    control_type: ControlType | None = None
    filters: tuple[RuleFilter, ...] = ()
    cooldown_seconds: int = 0
    unique: tuple[str, ...] = ()
    description: str = ""
    version: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- derived -------------------------------------------------------------------------------
    @property
    def window_ms(self) -> int:
        """The window length in milliseconds."""
        return self.window_minutes * 60_000

    @property
    def is_control(self) -> bool:
        """Whether this is a control command rather than a rule."""
        return self.rule_state is RuleState.CONTROL

    @property
    def evaluated(self) -> bool:
        """Whether transactions are evaluated against it (ACTIVE or SHADOW)."""
        return self.rule_state is RuleState.ACTIVE or self.rule_state is RuleState.SHADOW

    def collection_signature(self) -> tuple[Any, ...]:
        """What decides which values the rule's windows hold; a change restarts them."""
        return (
            self.grouping_key_names,
            self.aggregate_field_name,
            self.aggregator_function_type,
            self.filters,
            self.window_minutes,
        )

    def with_version(self, version: int) -> Rule:
        """A copy with another version number."""
        return replace(self, version=version)

    def with_state(self, state: RuleState) -> Rule:
        """A copy with another state."""
        return replace(self, rule_state=state)

    # -- output --------------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        """The rule in the demo's camelCase wire form (extensions only when set)."""
        if self.is_control:
            out: dict[str, Any] = {"ruleId": self.rule_id, "ruleState": self.rule_state.value}
            out["controlType"] = self.control_type.value if self.control_type else None
            return out
        out = {
            "ruleId": self.rule_id,
            "ruleState": self.rule_state.value,
            "groupingKeyNames": list(self.grouping_key_names),
            "aggregateFieldName": self.aggregate_field_name,
            "aggregatorFunctionType": self.aggregator_function_type.value,
            "limitOperatorType": self.limit_operator_type.value,
            "limit": _json_number(self.limit),
            "windowMinutes": self.window_minutes,
            "version": self.version,
        }
        if self.filters:
            out["filters"] = [f.to_json_dict() for f in self.filters]
        if self.cooldown_seconds:
            out["cooldownSeconds"] = self.cooldown_seconds
        if self.unique:
            out["unique"] = list(self.unique)
        if self.description:
            out["description"] = self.description
        return out

    def aggregate_label(self) -> str:
        """``SUM(paymentAmount)``; counts read ``COUNT(*)``."""
        agg = self.aggregator_function_type
        field_name = self.aggregate_field_name
        if field_name == "COUNT_FLINK" and agg is Aggregator.SUM:
            return "COUNT(*)"
        if field_name == "COUNT_WITH_RESET_FLINK" and agg is Aggregator.SUM:
            return "COUNT(*) since the last alert"
        return f"{agg.value}({field_name})"

    def describe(self) -> str:
        """A readable sentence, e.g. for the UI's rule list."""
        if self.is_control:
            kind = self.control_type.value if self.control_type else "?"
            return f"Control command {kind}"
        text = (
            f"Rule {self.rule_id} (v{self.version}, {self.rule_state.value}): alert when "
            f"{self.aggregate_label()} {self.limit_operator_type.symbol} "
            f"{format_number(self.limit)} over the last {format_window(self.window_minutes)} "
            f"per {', '.join(self.grouping_key_names)}"
        )
        if self.filters:
            text += " for transactions with " + " and ".join(f.describe() for f in self.filters)
        if self.cooldown_seconds:
            text += f", at most one alert per key every {self.cooldown_seconds} s"
        return text


def _json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def format_number(value: float) -> str:
    """``20,000,000`` for integral values, ``20,000,312.50`` otherwise."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def format_window(minutes: int) -> str:
    """``30 days``, ``1 day``, ``2 hours``, ``90 minutes``."""
    for size, unit in ((1440, "day"), (60, "hour")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# -- parsing -----------------------------------------------------------------------------------

_KNOWN_KEYS = frozenset(
    {
        "ruleId",
        "ruleState",
        "groupingKeyNames",
        "aggregateFieldName",
        "aggregatorFunctionType",
        "limitOperatorType",
        "limit",
        "windowMinutes",
        "controlType",
        "filters",
        "cooldownSeconds",
        "unique",
        "description",
        "version",
    }
)


def _choices(kind: type[enum.Enum]) -> str:
    return ", ".join(m.value for m in kind)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Collector:
    """Collects field errors while reading a rule document."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.errors: dict[str, str] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def integer(self, name: str, low: int, high: int, required: bool = True) -> int | None:
        if name not in self.doc or self.doc[name] is None:
            if required:
                self.fail(name, "is required")
            return None
        raw = self.doc[name]
        value: Any = raw
        if isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                self.fail(name, f"{raw!r} is not an integer")
                return None
        elif isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
            value = int(raw)
        if not _is_int(value):
            self.fail(name, f"must be an integer, got {raw!r}")
            return None
        if not low <= value <= high:
            self.fail(name, f"must be between {low:,} and {high:,}, got {value!r}")
            return None
        return int(value)

    def number(self, name: str) -> float | None:
        if name not in self.doc or self.doc[name] is None:
            self.fail(name, "is required")
            return None
        raw = self.doc[name]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            self.fail(name, f"must be a number, got {raw!r}")
            return None
        try:
            value = float(raw.strip()) if isinstance(raw, str) else float(raw)
        except (ValueError, OverflowError):
            self.fail(name, f"{raw!r} is not a number")
            return None
        if not math.isfinite(value):
            self.fail(name, f"must be a finite number, got {raw!r}")
            return None
        if abs(value) > MAX_LIMIT:
            self.fail(name, f"must be at most {MAX_LIMIT:g} in magnitude, got {raw!r}")
            return None
        return value

    def choice(self, name: str, kind: type[enum.Enum], required: bool = True) -> Any:
        if name not in self.doc or self.doc[name] is None:
            if required:
                self.fail(name, f"is required; expected one of {_choices(kind)}")
            return None
        raw = self.doc[name]
        if not isinstance(raw, str):
            self.fail(name, f"must be a string, one of {_choices(kind)}; got {raw!r}")
            return None
        text = raw.strip().upper()
        if kind is LimitOperator and text in _FROM_SYMBOL:
            return _FROM_SYMBOL[text]
        try:
            return kind(text)
        except ValueError:
            label = {
                Aggregator: "aggregator",
                LimitOperator: "limit operator",
                RuleState: "rule state",
                ControlType: "control type",
            }[kind]
            extra = " (or =, !=, >=, <=, >, <)" if kind is LimitOperator else ""
            self.fail(name, f"unknown {label} {raw!r}; expected one of {_choices(kind)}{extra}")
            return None

    def names(self, name: str, required: bool) -> tuple[str, ...] | None:
        if name not in self.doc or self.doc[name] is None:
            if required:
                self.fail(name, "is required: a non-empty list of transaction field names")
            return None if required else ()
        raw = self.doc[name]
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            self.fail(name, f"must be a list of transaction field names, got {raw!r}")
            return None
        if required and not raw:
            self.fail(name, "must not be empty: name at least one transaction field to group by")
            return None
        if len(raw) > len(TRANSACTION_FIELDS):
            self.fail(name, f"has {len(raw)} names; at most {len(TRANSACTION_FIELDS)}")
            return None
        out: list[str] = []
        for item in raw:
            if not isinstance(item, str):
                self.fail(name, f"names must be strings, got {item!r}")
                return None
            if item not in TRANSACTION_FIELDS:
                self.fail(
                    name,
                    f"unknown field {item[:80]!r}; expected one of {', '.join(TRANSACTION_FIELDS)}",
                )
                return None
            if item in out:
                self.fail(name, f"field {item!r} is named twice")
                return None
            out.append(item)
        return tuple(out)


def _read_filters(col: _Collector) -> tuple[RuleFilter, ...]:
    raw = col.doc.get("filters")
    if raw is None:
        return ()
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        col.fail("filters", f"must be a list of {{field, operator, value}} objects, got {raw!r}")
        return ()
    if len(raw) > MAX_FILTERS:
        col.fail("filters", f"has {len(raw)} filters; at most {MAX_FILTERS}")
        return ()
    out: list[RuleFilter] = []
    for index, item in enumerate(raw):
        where = f"filters[{index}]"
        if not isinstance(item, Mapping):
            col.fail(where, f"must be an object with field, operator, value; got {item!r}")
            continue
        sub = _Collector(item)
        name = item.get("field")
        if not isinstance(name, str) or name not in TRANSACTION_FIELDS:
            col.fail(
                f"{where}.field",
                f"unknown field {name!r}; expected one of {', '.join(TRANSACTION_FIELDS)}",
            )
            continue
        op = sub.choice("operator", LimitOperator)
        value: float | str | None
        if name in _STRING_FIELDS:
            value = item.get("value")
            if not isinstance(value, str) or len(value) > 64:
                col.fail(f"{where}.value", f"must be a string for {name}, got {value!r}")
                value = None
            elif op is not None and op not in (LimitOperator.EQUAL, LimitOperator.NOT_EQUAL):
                col.fail(f"{where}.operator", f"{name} can only be compared with = or !=")
                op = None
        else:
            value = sub.number("value")
        for key, message in sub.errors.items():
            col.fail(f"{where}.{key}", message)
        if op is not None and value is not None:
            out.append(RuleFilter(name, op, value))
    return tuple(out)


def _load_text(obj: str | bytes) -> Any:
    if len(obj) > MAX_RULE_BYTES:
        raise RuleValidationError(
            {"rule": f"is {len(obj):,} bytes; a rule must be at most {MAX_RULE_BYTES:,} bytes"}
        )
    try:
        text = obj.decode("utf-8") if isinstance(obj, bytes) else obj
    except UnicodeDecodeError as exc:
        raise RuleValidationError({"rule": f"is not UTF-8 text: {exc}"}) from exc
    stripped = text.strip()
    if not stripped:
        raise RuleValidationError({"rule": "is empty"})
    if not stripped.startswith(("{", "[")):
        return parse_rule_csv(stripped)
    try:
        return json.loads(stripped)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise RuleValidationError({"rule": f"is not valid JSON: {exc}"}) from exc


def parse_rule(obj: Mapping[str, Any] | str | bytes | Rule) -> Rule:
    """Validate a rule given as a JSON object, JSON text, or the demo's CSV line.

    Raises:
        RuleValidationError: with a message per bad field (camelCase names; ``rule`` for
            the document as a whole).
    """
    if isinstance(obj, Rule):
        return obj
    doc: Any = _load_text(obj) if isinstance(obj, (str, bytes)) else obj
    if isinstance(doc, Rule):
        return doc
    if not isinstance(doc, Mapping):
        raise RuleValidationError({"rule": f"must be a JSON object, got {type(doc).__name__}"})
    col = _Collector(doc)
    for key in doc:
        if key not in _KNOWN_KEYS:
            shown = key[:80] if isinstance(key, str) else repr(key)
            col.fail(
                str(shown), f"unknown field {shown!r}; known: {', '.join(sorted(_KNOWN_KEYS))}"
            )
    state = col.choice("ruleState", RuleState)
    version = col.integer("version", 0, 2**53, required=False) or 0
    if state is RuleState.CONTROL:
        control_id = col.integer("ruleId", 0, MAX_RULE_ID, required=False) or 0
        control = col.choice("controlType", ControlType)
        if col.errors:
            raise RuleValidationError(col.errors)
        return Rule(control_id, RuleState.CONTROL, control_type=control, version=version)
    rule_id = col.integer("ruleId", 1, MAX_RULE_ID)
    if doc.get("controlType") is not None:
        col.fail("controlType", "is only allowed when ruleState is CONTROL")
    grouping = col.names("groupingKeyNames", required=True)
    unique = col.names("unique", required=False)
    aggregator = col.choice("aggregatorFunctionType", Aggregator)
    field_name = doc.get("aggregateFieldName")
    if field_name is None:
        col.fail("aggregateFieldName", "is required: a transaction field or COUNT_FLINK")
    elif not isinstance(field_name, str) or (
        field_name not in TRANSACTION_FIELDS and field_name not in COUNT_FIELDS
    ):
        shown = field_name[:80] if isinstance(field_name, str) else field_name
        col.fail(
            "aggregateFieldName",
            f"unknown field {shown!r}; expected a transaction field "
            f"({', '.join(TRANSACTION_FIELDS)}) or {' or '.join(COUNT_FIELDS)}",
        )
    elif field_name in _STRING_FIELDS and aggregator not in (None, Aggregator.COUNT_DISTINCT):
        col.fail(
            "aggregateFieldName",
            f"{field_name} is not numeric; only COUNT_DISTINCT can aggregate it",
        )
    operator = col.choice("limitOperatorType", LimitOperator)
    limit = col.number("limit")
    window = col.integer("windowMinutes", 1, MAX_WINDOW_MINUTES)
    cooldown = col.integer("cooldownSeconds", 0, MAX_COOLDOWN_SECONDS, required=False) or 0
    filters = _read_filters(col)
    description = doc.get("description") or ""
    if not isinstance(description, str) or len(description) > 500:
        col.fail("description", "must be a string of at most 500 characters")
        description = ""
    if col.errors:
        raise RuleValidationError(col.errors)
    assert rule_id is not None and grouping is not None and aggregator is not None
    assert operator is not None and limit is not None and window is not None
    return Rule(
        rule_id=rule_id,
        rule_state=state,
        grouping_key_names=grouping,
        aggregate_field_name=str(field_name),
        aggregator_function_type=aggregator,
        limit_operator_type=operator,
        limit=limit,
        window_minutes=window,
        filters=filters,
        cooldown_seconds=cooldown,
        unique=unique or (),
        description=description,
        version=version,
    )


def parse_rule_csv(line: str) -> Rule:
    """Parse the demo's plain rule format.

    Nine comma-separated fields, parentheses optional:
    ``ruleId,ruleState,groupingKeyNames,unique,aggregateFieldName,aggregatorFunctionType,
    limitOperatorType,limit,windowMinutes``; name lists are joined with ``&``, e.g.
    ``1,(active),(payeeId&beneficiaryId),,(paymentAmount),(sum),(>),(20000000),(43200)``.
    """
    if len(line) > MAX_RULE_BYTES:
        raise RuleValidationError({"rule": f"is longer than {MAX_RULE_BYTES:,} characters"})
    tokens = [t.strip().replace("(", "").replace(")", "").strip() for t in line.split(",")]
    if len(tokens) != 9:
        raise RuleValidationError(
            {"rule": f"a CSV rule has 9 comma-separated fields, got {len(tokens)}: {line[:200]!r}"}
        )

    def names(text: str) -> list[str]:
        return [n.strip() for n in text.split("&")] if text else []

    doc: dict[str, Any] = {
        "ruleId": tokens[0],
        "ruleState": tokens[1],
        "groupingKeyNames": names(tokens[2]),
        "unique": names(tokens[3]),
        "aggregateFieldName": tokens[4],
        "aggregatorFunctionType": tokens[5],
        "limitOperatorType": tokens[6],
        "limit": tokens[7],
        "windowMinutes": tokens[8],
    }
    return parse_rule(doc)


def parse_rules(obj: str | bytes | Sequence[Any]) -> list[Rule]:
    """Parse a list of rules: a JSON array, JSON lines, CSV lines, or a sequence of objects.

    Raises:
        RuleValidationError: naming the rule's index, e.g. ``[2].limit``.
    """
    items: Sequence[Any]
    if isinstance(obj, (str, bytes)):
        text = obj.decode("utf-8") if isinstance(obj, bytes) else obj
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise RuleValidationError({"rules": f"is not valid JSON: {exc}"}) from exc
            if not isinstance(items, list):
                raise RuleValidationError({"rules": "must be a JSON array of rules"})
        else:
            items = [line for line in stripped.splitlines() if line.strip()]
    else:
        items = obj
    out: list[Rule] = []
    errors: dict[str, str] = {}
    for index, item in enumerate(items):
        try:
            out.append(parse_rule(item))
        except RuleValidationError as exc:
            for name, message in exc.errors.items():
                errors[f"[{index}].{name}"] = message
    if errors:
        raise RuleValidationError(errors)
    return out


#: The demo's four default rules (also in the shared fixtures as demo_rules.json).
DEMO_RULES: tuple[dict[str, Any], ...] = (
    {
        "ruleId": 1,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["payeeId", "beneficiaryId"],
        "aggregateFieldName": "paymentAmount",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER",
        "limit": 20000000,
        "windowMinutes": 43200,
    },
    {
        "ruleId": 2,
        "ruleState": "PAUSE",
        "groupingKeyNames": ["paymentType"],
        "aggregateFieldName": "COUNT_FLINK",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "LESS",
        "limit": 300,
        "windowMinutes": 1440,
    },
    {
        "ruleId": 3,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["beneficiaryId"],
        "aggregateFieldName": "paymentAmount",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER_EQUAL",
        "limit": 10000000,
        "windowMinutes": 1440,
    },
    {
        "ruleId": 4,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["paymentType"],
        "aggregateFieldName": "COUNT_WITH_RESET_FLINK",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER_EQUAL",
        "limit": 100,
        "windowMinutes": 1440,
    },
)
