"""The SQLite alert store, and the ``sqlite:PATH`` sink that fills it exactly once.

An alert is kept as its JSON (``to_json_dict()``) with three indexed columns taken from
it: the alert time (``alertTime``, else ``timestamp``, else ``windowEnd``), the rule
(``ruleId``) and the key (``key``, else ``accountIdStr``/``accountId``). Reads are
newest first and paginated by keyset: a page ends with ``next_before``, the cursor to
pass as ``before`` for the next page, so deep pages cost what the first one does.

The sink, with checkpoints, commits each checkpoint's alerts in one SQLite transaction
together with the committable's token in a ``commits`` table: committing the same
checkpoint twice (after a restore) inserts nothing the second time. Without
checkpoints, each batch is inserted as it arrives. The store only ever adds: running a
job again adds its alerts to those already there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudstream.connectors.base import Sink, SinkWriter, WriterContext
from fraudstream.connectors.codecs import _json_ready, to_json_bytes
from fraudstream.exceptions import ConfigurationError

__all__ = ["AlertPage", "AlertStore", "SqliteAlertSink", "sqlite_sink"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_time INTEGER NOT NULL,
    rule_id INTEGER,
    key TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (alert_time, id);
CREATE INDEX IF NOT EXISTS alerts_by_rule ON alerts (rule_id, id);
CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (key, id);
CREATE TABLE IF NOT EXISTS commits (
    token TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""
#: Commit tokens kept for idempotency (a restored checkpoint is among the newest).
_KEEP_TOKENS = 10_000
_MAX_LIMIT = 1000


@dataclass(frozen=True)
class AlertPage:
    """One page of alerts, newest first.

    Attributes:
        items: the alerts as stored (their ``to_json_dict()``).
        next_before: pass as ``before`` to read the next (older) page; ``None`` at the end.
    """

    items: list[dict[str, Any]]
    next_before: int | None


def _alert_columns(alert: Mapping[str, Any]) -> tuple[int, int | None, str | None]:
    when = alert.get("alertTime", alert.get("timestamp", alert.get("windowEnd", 0)))
    rule = alert.get("ruleId")
    key = alert.get("key", alert.get("accountIdStr", alert.get("accountId")))
    return (
        int(when) if isinstance(when, (int, float)) and not isinstance(when, bool) else 0,
        rule if type(rule) is int else None,
        None if key is None else str(key),
    )


class AlertStore:
    """Alerts in a SQLite database file (``":memory:"`` for a private in-memory one).

    Safe to share between threads (one connection behind a lock) and, through SQLite's
    WAL journal, between processes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            where = Path(self.path)
            if where.is_dir():
                raise ConfigurationError(f"alert store {self.path!r} is a directory")
            if not where.parent.is_dir():
                raise ConfigurationError(
                    f"alert store {self.path!r}: no such directory {str(where.parent)!r}"
                )
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(f"alert store {self.path!r} cannot be opened: {exc}") from exc

    # -- writing -------------------------------------------------------------------------------
    def add_many(self, alerts: Sequence[Mapping[str, Any]]) -> int:
        """Insert alerts (``to_json_dict()`` dicts) in one transaction; returns how many."""
        return self._insert(alerts, None)

    def add_committed(self, token: str, alerts: Sequence[Mapping[str, Any]]) -> int:
        """Insert alerts once per ``token``, atomically with the token (0 if already done)."""
        return self._insert(alerts, token)

    def _insert(self, alerts: Sequence[Mapping[str, Any]], token: str | None) -> int:
        rows = []
        for alert in alerts:
            if not isinstance(alert, Mapping):
                raise TypeError(f"alerts are dicts (alert.to_json_dict()), got {alert!r}")
            rows.append((*_alert_columns(alert), to_json_bytes(dict(alert)).decode()))
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if token is not None:
                    if db.execute("SELECT 1 FROM commits WHERE token = ?", (token,)).fetchone():
                        db.execute("ROLLBACK")
                        return 0
                    seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM commits").fetchone()[0]
                    db.execute("INSERT INTO commits (token, seq) VALUES (?, ?)", (token, seq))
                    db.execute("DELETE FROM commits WHERE seq <= ?", (seq - _KEEP_TOKENS,))
                db.executemany(
                    "INSERT INTO alerts (alert_time, rule_id, key, body) VALUES (?, ?, ?, ?)", rows
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return len(rows)

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _where(
        rule_id: int | None, key: str | None, since_ms: int | None, until_ms: int | None
    ) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("rule_id = ?", rule_id),
            ("key = ?", key),
            ("alert_time >= ?", since_ms),
            ("alert_time < ?", until_ms),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return clauses, params

    def _select(
        self,
        rule_id: int | None,
        key: str | None,
        *,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
        before: int | None,
    ) -> tuple[str, list[Any]]:
        """The page's SQL: newest first by id, one more row than asked to see if more follow."""
        clauses, params = self._where(
            rule_id, None if key is None else str(key), since_ms, until_ms
        )
        if before is not None:
            clauses.append("id < ?")
            params.append(int(before))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # A time range alone reads the time index (old ranges would otherwise scan every
        # newer alert); with a rule or key their index is narrower.
        hint = ""
        if rule_id is None and key is None and (since_ms is not None or until_ms is not None):
            hint = "INDEXED BY alerts_by_time"
        params.append(limit + 1)
        return f"SELECT id, body FROM alerts {hint} {where} ORDER BY id DESC LIMIT ?", params

    def query(
        self,
        rule_id: int | None = None,
        key: str | None = None,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> AlertPage:
        """Alerts matching every given filter, newest first, at most ``limit`` (1..1000).

        ``since_ms``/``until_ms`` bound the alert time (``since <= t < until``);
        ``before`` is the ``next_before`` of the previous page.
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_LIMIT:
            raise ConfigurationError(
                f"limit must be an integer from 1 to {_MAX_LIMIT}, got {limit!r}"
            )
        sql, params = self._select(
            rule_id, key, since_ms=since_ms, until_ms=until_ms, limit=limit, before=before
        )
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [json.loads(body) for _, body in rows]
        return AlertPage(items, rows[-1][0] if more and rows else None)

    def count(
        self,
        rule_id: int | None = None,
        key: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> int:
        """How many alerts match the filters (all alerts without filters)."""
        clauses, params = self._where(
            rule_id, None if key is None else str(key), since_ms, until_ms
        )
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM alerts {where}", params).fetchone()
        return int(row[0])

    def iter_all(self) -> Iterable[dict[str, Any]]:
        """Every alert, oldest first (exports, tests)."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM alerts ORDER BY id").fetchall()
        return [json.loads(body) for (body,) in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteAlertSink(Sink[Any]):
    """Writes alerts into an :class:`AlertStore` file; exactly once with checkpoints."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        AlertStore(self.path).close()  # fail at build time on a bad path, not mid-job

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
        """A writer with its own connection."""
        return _StoreWriter(self.path)


class _StoreWriter(SinkWriter[Any]):
    def __init__(self, path: str) -> None:
        self._path = path
        self._store: AlertStore | None = None
        self._exactly_once = False
        self._staged: list[dict[str, Any]] = []
        self._id = uuid.uuid4().hex[:16]

    def open(self, context: WriterContext) -> None:
        self._store = AlertStore(self._path)
        self._exactly_once = context.exactly_once

    def write(self, values: Sequence[Any]) -> None:
        alerts = [_json_ready(v) for v in values]
        for alert in alerts:
            if not isinstance(alert, dict):
                raise TypeError(f"the sqlite sink stores alerts (dicts), got {alert!r}")
        if self._exactly_once:
            self._staged.extend(alerts)
        elif alerts:
            assert self._store is not None
            self._store.add_many(alerts)

    def prepare_commit(self, checkpoint_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        if not self._exactly_once or not self._staged:
            return None
        staged, self._staged = self._staged, []
        return (f"{self._id}-{checkpoint_id}", staged)

    def commit(self, committables: Sequence[Any]) -> None:
        assert self._store is not None
        for token, alerts in committables:
            self._store.add_committed(token, alerts)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def sqlite_sink(spec: Any, role: str) -> SqliteAlertSink:
    """``sqlite:PATH``: alerts into the SQLite alert store at PATH."""
    if spec.options:
        raise ConfigurationError(f"{spec.text!r}: the sqlite sink takes no options")
    if not spec.target:
        raise ConfigurationError(f"{spec.text!r}: give a database path, e.g. sqlite:alerts.db")
    try:
        return SqliteAlertSink(spec.target)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{spec.text!r}: {exc}") from None
