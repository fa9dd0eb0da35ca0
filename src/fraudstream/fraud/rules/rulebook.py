"""The rule book: the current rule set, every version of every rule, and an audit log.

Kept in SQLite (stdlib ``sqlite3``) when given a path, in an in-memory SQLite database
otherwise. Every accepted change gets the next version number of its rule (versions
keep counting after a delete and re-create) and an audit entry: who, what, when, the
old and the new JSON. A refused change raises
:class:`~fraudstream.exceptions.RuleValidationError` and changes nothing.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fraudstream.exceptions import RuleValidationError
from fraudstream.fraud.rules.model import Rule, RuleState, parse_rule

__all__ = ["AuditEntry", "RuleBook"]

MAX_RULES = 10_000
MAX_ACTOR_CHARS = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    rule_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_versions (
    rule_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    json TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (rule_id, version)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    rule_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    old_json TEXT,
    new_json TEXT
);
"""


@dataclass(frozen=True)
class AuditEntry:
    """One change of the rule set."""

    id: int
    at: int  # epoch ms
    actor: str
    action: str  # create, update, state, delete
    rule_id: int
    version: int
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    def to_json_dict(self) -> dict[str, Any]:
        """The entry as JSON fields."""
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "ruleId": self.rule_id,
            "version": self.version,
            "old": self.old,
            "new": self.new,
        }


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR_CHARS:
        raise RuleValidationError(
            {"actor": f"must be a non-empty string of at most {MAX_ACTOR_CHARS} characters"}
        )
    return actor.strip()


class RuleBook:
    """The versioned rule set with an audit log (thread-safe)."""

    def __init__(self, path: str | None = None, clock_ms: Callable[[], int] = _wall_ms) -> None:
        self.path = path
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False)
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- reading -------------------------------------------------------------------------------
    def get(self, rule_id: int) -> Rule | None:
        """The current version of a rule, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT json FROM rules WHERE rule_id = ?", (rule_id,)
            ).fetchone()
        return None if row is None else parse_rule(row[0])

    def list(self) -> builtins.list[Rule]:
        """The rule set, by id."""
        with self._lock:
            rows = self._db.execute("SELECT json FROM rules ORDER BY rule_id").fetchall()
        return [parse_rule(r[0]) for r in rows]

    def versions(self, rule_id: int) -> builtins.list[Rule]:
        """Every version of a rule, oldest first (a delete is a version in state DELETE)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT json FROM rule_versions WHERE rule_id = ? ORDER BY version", (rule_id,)
            ).fetchall()
        return [parse_rule(r[0]) for r in rows]

    def audit(self, limit: int = 50, offset: int = 0) -> builtins.list[AuditEntry]:
        """Audit entries, newest first."""
        limit = max(0, min(int(limit), 1000))
        offset = max(0, int(offset))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, actor, action, rule_id, version, old_json, new_json FROM audit "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [
            AuditEntry(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                None if r[6] is None else json.loads(r[6]),
                None if r[7] is None else json.loads(r[7]),
            )
            for r in rows
        ]

    # -- changing ------------------------------------------------------------------------------
    def upsert(self, obj: Mapping[str, Any] | str | bytes | Rule, actor: str) -> Rule:
        """Validate and store a rule as its next version; returns the stored rule.

        A rule in state DELETE deletes it. Control commands are not rules to keep and
        are refused here (send them to the job directly).
        """
        actor = _check_actor(actor)
        rule = parse_rule(obj)
        if rule.is_control:
            raise RuleValidationError(
                {
                    "ruleState": "control commands are not stored in the rule book; send them "
                    "to the job directly"
                }
            )
        if rule.rule_state is RuleState.DELETE:
            return self.delete(rule.rule_id, actor)
        with self._lock, self._db:
            old = self._current(rule.rule_id)
            if old is None:
                count = self._db.execute("SELECT COUNT(*) FROM rules").fetchone()[0]
                if count >= MAX_RULES:
                    raise RuleValidationError(
                        {"ruleId": f"the rule book holds at most {MAX_RULES:,} rules"}
                    )
            return self._write(rule, old, actor, "create" if old is None else "update")

    def set_state(self, rule_id: int, state: RuleState | str, actor: str) -> Rule:
        """Change a rule's state (ACTIVE, PAUSE, SHADOW, or DELETE to delete it)."""
        actor = _check_actor(actor)
        try:
            new_state = RuleState(state.upper() if isinstance(state, str) else state)
        except ValueError:
            raise RuleValidationError(
                {"ruleState": f"unknown rule state {state!r}; expected ACTIVE, PAUSE, SHADOW"}
            ) from None
        if new_state is RuleState.CONTROL:
            raise RuleValidationError({"ruleState": "a rule cannot be put in state CONTROL"})
        if new_state is RuleState.DELETE:
            return self.delete(rule_id, actor)
        with self._lock, self._db:
            old = self._current(rule_id)
            if old is None:
                raise KeyError(f"no rule {rule_id!r} in the rule book")
            return self._write(old.with_state(new_state), old, actor, "state")

    def delete(self, rule_id: int, actor: str) -> Rule:
        """Delete a rule; returns its tombstone (state DELETE, next version) for the job."""
        actor = _check_actor(actor)
        with self._lock, self._db:
            old = self._current(rule_id)
            if old is None:
                raise KeyError(f"no rule {rule_id!r} in the rule book")
            return self._write(old.with_state(RuleState.DELETE), old, actor, "delete")

    def delete_all(self, actor: str) -> builtins.list[Rule]:
        """Delete every rule; returns their tombstones."""
        actor = _check_actor(actor)
        with self._lock, self._db:
            rows = self._db.execute("SELECT json FROM rules ORDER BY rule_id").fetchall()
            olds = [parse_rule(r[0]) for r in rows]
            return [self._write(o.with_state(RuleState.DELETE), o, actor, "delete") for o in olds]

    # -- inside the lock and a transaction -------------------------------------------------------
    def _current(self, rule_id: int) -> Rule | None:
        row = self._db.execute("SELECT json FROM rules WHERE rule_id = ?", (rule_id,)).fetchone()
        return None if row is None else parse_rule(row[0])

    def _write(self, rule: Rule, old: Rule | None, actor: str, action: str) -> Rule:
        last = self._db.execute(
            "SELECT MAX(version) FROM rule_versions WHERE rule_id = ?", (rule.rule_id,)
        ).fetchone()[0]
        stored = rule.with_version((last or 0) + 1)
        text = json.dumps(stored.to_json_dict(), sort_keys=True)
        now = self._clock_ms()
        if stored.rule_state is RuleState.DELETE:
            self._db.execute("DELETE FROM rules WHERE rule_id = ?", (stored.rule_id,))
        else:
            self._db.execute(
                "INSERT INTO rules (rule_id, version, json) VALUES (?, ?, ?) "
                "ON CONFLICT(rule_id) DO UPDATE SET "
                "version = excluded.version, json = excluded.json",
                (stored.rule_id, stored.version, text),
            )
        self._db.execute(
            "INSERT INTO rule_versions (rule_id, version, json, changed_at, actor) "
            "VALUES (?, ?, ?, ?, ?)",
            (stored.rule_id, stored.version, text, now, actor),
        )
        old_text = None if old is None else json.dumps(old.to_json_dict(), sort_keys=True)
        self._db.execute(
            "INSERT INTO audit (at, actor, action, rule_id, version, old_json, new_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, actor, action, stored.rule_id, stored.version, old_text, text),
        )
        return stored
