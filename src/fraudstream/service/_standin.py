"""TEMPORARY stand-ins for the rules engine, generator and alert store.

The real ones (``fraudstream.fraud.rules``, ``fraudstream.connectors.generator``,
``fraudstream.connectors.sqlite``) are built in parallel by other branches; this module
follows their agreed contracts closely enough for the service to be built and tested, and
is deleted when they are merged. Nothing outside :mod:`fraudstream.service.engine` imports it.
"""

from __future__ import annotations

import builtins
import json
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from fraudstream.connectors.base import Source as _Source
from fraudstream.connectors.base import SourceReader
from fraudstream.datastream import CoFlatMapFunction, DataStream
from fraudstream.exceptions import RuleValidationError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction

_STATES = ("ACTIVE", "PAUSE", "DELETE", "CONTROL")
_AGGREGATORS = ("SUM", "AVG", "MIN", "MAX")
_OPERATORS = {
    "EQUAL": "=",
    "NOT_EQUAL": "!=",
    "GREATER_EQUAL": ">=",
    "LESS_EQUAL": "<=",
    "GREATER": ">",
    "LESS": "<",
}
_SYMBOLS = {v: k for k, v in _OPERATORS.items()}
_CONTROLS = ("CLEAR_STATE_ALL", "CLEAR_STATE_ALL_STOP", "DELETE_RULES_ALL", "EXPORT_RULES_CURRENT")
_KEY_FIELDS = ("payeeId", "beneficiaryId", "paymentType", "transactionId")
_NUMERIC_FIELDS = ("paymentAmount", "COUNT_FLINK", "COUNT_WITH_RESET_FLINK")


@dataclass(frozen=True)
class Rule:
    """A demo rule (stand-in)."""

    rule_id: int
    rule_state: str
    grouping_key_names: tuple[str, ...] = ()
    aggregate_field_name: str = ""
    aggregator_function_type: str = "SUM"
    limit_operator_type: str = "GREATER"
    limit: float = 0.0
    window_minutes: int = 0
    control_type: str | None = None
    version: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        """The camelCase wire form."""
        out: dict[str, Any] = {"ruleId": self.rule_id, "ruleState": self.rule_state}
        if self.rule_state == "CONTROL":
            out["controlType"] = self.control_type
        else:
            out.update(
                groupingKeyNames=list(self.grouping_key_names),
                aggregateFieldName=self.aggregate_field_name,
                aggregatorFunctionType=self.aggregator_function_type,
                limitOperatorType=self.limit_operator_type,
                limit=self.limit,
                windowMinutes=self.window_minutes,
            )
        out["version"] = self.version
        return out

    def describe(self) -> str:
        """A readable sentence."""
        if self.rule_state == "CONTROL":
            return f"control command {self.control_type}"
        what = (
            "number of transactions"
            if self.aggregate_field_name.startswith("COUNT")
            else f"{self.aggregator_function_type} of {self.aggregate_field_name}"
        )
        return (
            f"Alert when the {what} per {' and '.join(self.grouping_key_names)} over "
            f"{self.window_minutes} minutes is {_OPERATORS[self.limit_operator_type]} "
            f"{self.limit:g}"
        )


def parse_rule(obj: Mapping[str, Any] | str | bytes) -> Rule:
    """Validate a rule (stand-in); raises RuleValidationError(field -> message)."""
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise RuleValidationError({"rule": f"not JSON: {exc}"}) from exc
    if not isinstance(obj, Mapping):
        raise RuleValidationError({"rule": "expected a JSON object"})
    errors: dict[str, str] = {}
    rule_id = obj.get("ruleId")
    if type(rule_id) is not int or rule_id < 0 or rule_id >= 2**63:
        errors["ruleId"] = f"expected a non-negative 64-bit integer, got {rule_id!r}"
    state = obj.get("ruleState")
    if state not in _STATES:
        errors["ruleState"] = f"unknown state {state!r}; expected one of {', '.join(_STATES)}"
    if state == "CONTROL":
        control = obj.get("controlType")
        if control not in _CONTROLS:
            errors["controlType"] = f"unknown control {control!r}"
        if errors:
            raise RuleValidationError(errors)
        return Rule(int(rule_id), "CONTROL", control_type=str(control))  # type: ignore[arg-type]
    keys = obj.get("groupingKeyNames")
    if not isinstance(keys, list) or not all(k in _KEY_FIELDS for k in keys):
        errors["groupingKeyNames"] = f"expected a list of {', '.join(_KEY_FIELDS)}, got {keys!r}"
    agg_field = obj.get("aggregateFieldName")
    if agg_field not in _NUMERIC_FIELDS:
        errors["aggregateFieldName"] = f"unknown field {agg_field!r}"
    agg = obj.get("aggregatorFunctionType")
    if agg not in _AGGREGATORS:
        errors["aggregatorFunctionType"] = (
            f"unknown aggregator {agg!r}; expected one of SUM, AVG, MIN, MAX"
        )
    op = obj.get("limitOperatorType")
    op = _SYMBOLS.get(op, op) if isinstance(op, str) else op
    if op not in _OPERATORS:
        errors["limitOperatorType"] = f"unknown operator {op!r}"
    limit = obj.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        errors["limit"] = f"expected a number, got {limit!r}"
    window = obj.get("windowMinutes")
    if type(window) is not int or window <= 0 or window > 10**7:
        errors["windowMinutes"] = f"expected a positive integer, got {window!r}"
    if errors:
        raise RuleValidationError(errors)
    return Rule(
        int(rule_id),  # type: ignore[arg-type]
        str(state),
        tuple(keys),  # type: ignore[arg-type]
        str(agg_field),
        str(agg),
        str(op),
        float(limit),  # type: ignore[arg-type]
        int(window),  # type: ignore[arg-type]
    )


class RuleBook:
    """Versioned rule set with an audit log, in SQLite (stand-in)."""

    def __init__(self, path: str | None = None) -> None:
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS rules (id INTEGER PRIMARY KEY, body TEXT)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "at INTEGER, actor TEXT, action TEXT, rule_id INTEGER, version INTEGER, body TEXT)"
            )

    def _log(self, actor: str, action: str, rule_id: int, version: int, body: str) -> None:
        self._db.execute(
            "INSERT INTO audit (at, actor, action, rule_id, version, body) VALUES (?,?,?,?,?,?)",
            (int(time.time() * 1000), actor, action, rule_id, version, body),
        )

    def upsert(self, obj: Mapping[str, Any] | str | bytes, actor: str = "") -> Rule:
        """Validate and store."""
        rule = parse_rule(obj)
        with self._lock, self._db:
            old = self.get(rule.rule_id)
            rule = replace(rule, version=(old.version + 1) if old else 1)
            body = json.dumps(rule.to_json_dict())
            self._db.execute("INSERT OR REPLACE INTO rules VALUES (?, ?)", (rule.rule_id, body))
            self._log(actor, "upsert", rule.rule_id, rule.version, body)
        return rule

    def get(self, rule_id: int) -> Rule | None:
        """One rule."""
        if not -(2**63) <= rule_id < 2**63:
            return None
        row = self._db.execute("SELECT body FROM rules WHERE id = ?", (rule_id,)).fetchone()
        return _load(row[0]) if row else None

    def list(self) -> builtins.list[Rule]:
        """All rules by id."""
        rows = self._db.execute("SELECT body FROM rules ORDER BY id").fetchall()
        return [_load(r[0]) for r in rows]

    def delete(self, rule_id: int, actor: str = "") -> bool:
        """Delete one."""
        with self._lock, self._db:
            old = self.get(rule_id)
            if old is None:
                return False
            self._db.execute("DELETE FROM rules WHERE id = ?", (rule_id,))
            self._log(actor, "delete", rule_id, old.version, "")
        return True

    def delete_all(self, actor: str = "") -> int:
        """Delete all."""
        with self._lock, self._db:
            n = self._db.execute("DELETE FROM rules").rowcount
            self._log(actor, "delete_all", 0, 0, "")
        return int(n)

    def set_state(self, rule_id: int, state: str, actor: str = "") -> Rule | None:
        """ACTIVE/PAUSE."""
        old = self.get(rule_id)
        if old is None:
            return None
        body = old.to_json_dict()
        body["ruleState"] = state
        return self.upsert(body, actor)

    def audit(self, limit: int = 50, offset: int = 0) -> builtins.list[dict[str, Any]]:
        """Newest first."""
        rows = self._db.execute(
            "SELECT seq, at, actor, action, rule_id, version, body FROM audit "
            "ORDER BY seq DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        keys = ("seq", "at", "actor", "action", "ruleId", "version", "rule")
        return [dict(zip(keys, r)) for r in rows]

    def versions(self, rule_id: int) -> builtins.list[Rule]:
        """Every stored version, oldest first."""
        rows = self._db.execute(
            "SELECT body FROM audit WHERE rule_id = ? AND action = 'upsert' ORDER BY seq",
            (rule_id,),
        ).fetchall()
        return [_load(r[0]) for r in rows]


def _load(body: str) -> Rule:
    data = json.loads(body)
    return replace(parse_rule(data), version=int(data.get("version", 0)))


@dataclass
class RuleAlert:
    """An alert (stand-in)."""

    rule: Rule
    key: tuple[Any, ...]
    event: Transaction
    aggregate: float
    window_start: int
    alert_time: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_json_dict(self) -> dict[str, Any]:
        """The camelCase wire form."""
        ev = self.event
        return {
            "ruleId": self.rule.rule_id,
            "ruleVersion": self.rule.version,
            "groupingKeyNames": list(self.rule.grouping_key_names),
            "groupingKey": dict(zip(self.rule.grouping_key_names, self.key)),
            "key": "|".join(str(k) for k in self.key),
            "triggeringEvent": transaction_to_json_dict(ev),
            "aggregate": self.aggregate,
            "limit": self.rule.limit,
            "limitOperator": self.rule.limit_operator_type,
            "windowStart": self.window_start,
            "windowEnd": ev.event_time,
            "explanation": f"{self.rule.describe()}: it was {self.aggregate:g}",
            "shadow": False,
            "alertTime": self.alert_time,
        }


def transaction_to_json_dict(tx: Transaction) -> dict[str, Any]:
    """Transaction wire form."""
    return {name: tx[i] for name, i in TRANSACTION_FIELDS.items()}


class RulesJobStreams(NamedTuple):
    """The streams of a rules job."""

    alerts: DataStream
    latency: DataStream


class _Evaluate(CoFlatMapFunction):
    def __init__(self, initial: Iterable[Rule] = ()) -> None:
        self.rules: dict[int, Rule] = {r.rule_id: r for r in initial}
        self.windows: dict[tuple[int, tuple[Any, ...]], deque[Transaction]] = {}
        self.resets: dict[tuple[int, tuple[Any, ...]], int] = {}
        self.sums: dict[tuple[int, tuple[Any, ...]], float] = {}

    def flat_map2(self, rule: Rule) -> Iterable[Any]:
        if rule.rule_state == "CONTROL":
            if rule.control_type and rule.control_type.startswith("CLEAR_STATE"):
                self.windows.clear()
                self.sums.clear()
            if rule.control_type == "DELETE_RULES_ALL":
                self.rules.clear()
        elif rule.rule_state == "DELETE":
            self.rules.pop(rule.rule_id, None)
        else:
            self.rules[rule.rule_id] = rule
        return ()

    def flat_map1(self, tx: Transaction) -> Iterable[Any]:
        now = int(time.time() * 1000)
        yield ("latency", now - tx.ingestion_timestamp)
        for rule in self.rules.values():
            if rule.rule_state != "ACTIVE":
                continue
            key = tuple(tx[TRANSACTION_FIELDS[k]] for k in rule.grouping_key_names)
            slot = (rule.rule_id, key)
            window = self.windows.setdefault(slot, deque())
            window.append(tx)
            total = self.sums.get(slot, 0.0) + tx.payment_amount
            start = tx.event_time - rule.window_minutes * 60_000
            while window and window[0].event_time < start:
                total -= window.popleft().payment_amount
            self.sums[slot] = total
            if rule.aggregate_field_name == "COUNT_FLINK":
                value = float(len(window))
            elif rule.aggregate_field_name == "COUNT_WITH_RESET_FLINK":
                value = float(self.resets.get(slot, 0) + 1)
                self.resets[slot] = int(value)
            else:
                kind = rule.aggregator_function_type
                if kind == "MIN":
                    value = min(t.payment_amount for t in window)
                elif kind == "MAX":
                    value = max(t.payment_amount for t in window)
                else:
                    value = total / (len(window) if kind == "AVG" else 1)
            if _compare(value, rule.limit_operator_type, rule.limit):
                if rule.aggregate_field_name == "COUNT_WITH_RESET_FLINK":
                    self.resets[slot] = 0
                yield ("alert", RuleAlert(rule, key, tx, value, start, now))


def _compare(value: float, op: str, limit: float) -> bool:
    return {
        "EQUAL": value == limit,
        "NOT_EQUAL": value != limit,
        "GREATER_EQUAL": value >= limit,
        "LESS_EQUAL": value <= limit,
        "GREATER": value > limit,
        "LESS": value < limit,
    }[op]


def build_rules_job(
    transactions: DataStream,
    rules: DataStream,
    *,
    initial_rules: Iterable[Rule] = (),
    out_of_orderness_ms: int | None = None,
) -> RulesJobStreams:
    """A naive single-instance rules job (stand-in)."""
    both = transactions.connect(rules).flat_map(_Evaluate(initial_rules))
    alerts = both.filter(lambda r: r[0] == "alert").map(lambda r: r[1])
    latency = both.filter(lambda r: r[0] == "latency").map(lambda r: r[1])
    return RulesJobStreams(alerts, latency)


class TransactionGenerator(_Source[Transaction]):
    """Rate-controlled random transactions (stand-in)."""

    bounded = False
    max_parallelism = 1

    def __init__(self, seed: int = 0, rate: float | None = None, accounts: int = 1000) -> None:
        self._rate = rate
        self._paused = False
        self.seed = seed
        self.accounts = accounts
        self.emitted = 0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float | None:
        """Transactions per second (None: unthrottled)."""
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        """Change the rate live."""
        with self._lock:
            self._rate = rate

    @property
    def paused(self) -> bool:
        """Paused?"""
        return self._paused

    def pause(self) -> None:
        """Stop emitting."""
        self._paused = True

    def resume(self) -> None:
        """Emit again."""
        self._paused = False

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Transaction]:
        """The one reader."""
        return _GeneratorReader(self)


class _GeneratorReader(SourceReader[Transaction]):
    def __init__(self, gen: TransactionGenerator) -> None:
        self.gen = gen
        self.rng = random.Random(gen.seed)
        self.last = time.monotonic()
        self.credit = 0.0

    def poll(self, max_records: int) -> Sequence[Transaction] | None:
        gen = self.gen
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        if gen.paused:
            time.sleep(0.005)
            return []
        if gen.rate is None:
            count = max_records
        else:
            self.credit = min(self.credit + elapsed * gen.rate, max(gen.rate * 0.1, 1.0))
            count = min(int(self.credit), max_records)
            self.credit -= count
            if count == 0:
                time.sleep(0.002)
                return []
        ms = time.time_ns() // 1_000_000
        rng = self.rng
        out = []
        for _ in range(count):
            gen.emitted += 1
            out.append(
                Transaction(
                    rng.getrandbits(62),
                    ms,
                    rng.randrange(gen.accounts),
                    rng.randrange(gen.accounts),
                    round(rng.uniform(1, 1000), 2),
                    "CSH" if rng.random() < 0.5 else "CRD",
                    ms,
                )
            )
        return out

    def snapshot_position(self) -> Any:
        return self.gen.emitted

    def restore_position(self, position: Any) -> None:
        self.gen.emitted = int(position)


class AlertPage(NamedTuple):
    """One page of alerts."""

    items: list[dict[str, Any]]
    next_before: int | None


class AlertStore:
    """SQLite alert store (stand-in)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS alerts (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "rule_id INTEGER, key TEXT, at INTEGER, body TEXT)"
            )

    def add_many(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Append alerts."""
        rows = [(a["ruleId"], a["key"], a["alertTime"], json.dumps(a)) for a in alerts]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO alerts (rule_id, key, at, body) VALUES (?,?,?,?)", rows
            )

    def query(
        self,
        *,
        rule_id: int | None = None,
        key: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> AlertPage:
        """Newest first, filtered, paged by ``before`` (a sequence number)."""
        where, args = ["1=1"], []
        for clause, value in (
            ("rule_id = ?", rule_id),
            ("key = ?", key),
            ("at >= ?", since_ms),
            ("at < ?", until_ms),
            ("seq < ?", before),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, body FROM alerts WHERE {' AND '.join(where)} "
                "ORDER BY seq DESC LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        items = [json.loads(b) for _, b in rows[:limit]]
        return AlertPage(items, rows[limit - 1][0] if len(rows) > limit else None)

    def count(self) -> int:
        """Number of alerts."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
