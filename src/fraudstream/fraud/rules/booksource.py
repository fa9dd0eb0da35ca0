"""The rule book as the rules job's starting point and rules stream (``--rules sqlite:PATH``).

The job starts from the book's current rule set and then follows its changes:

1. :func:`read_rule_book` opens the book's SQLite file *read-only* and reads, in one
   read transaction, the rules table and the last audit entry's id (the book's
   version). Those rules are in force from the first transaction on.
2. :class:`RuleBookSource` (one reader) then polls the audit log every ``poll_ms`` for
   entries after that version and emits each entry's new rule as JSON (a deletion is the
   rule in state DELETE), in the order the book accepted them. Its position, checkpointed
   with the job, is the last audit id it emitted.

A file that is missing, is not an SQLite database, lacks the book's tables, or holds a
rule that does not validate is refused with a :class:`ConfigurationError` naming the
path and the problem; the book is never written (another process may own it).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fraudstream.connectors.base import ReaderContext, Source, SourceReader
from fraudstream.exceptions import ConfigurationError, RuleValidationError
from fraudstream.fraud.rules.model import Rule, parse_rule
from fraudstream.fraud.rules.rulebook import MAX_RULES

__all__ = ["RuleBookSnapshot", "RuleBookSource", "read_rule_book"]

log = logging.getLogger("fraudstream.rules")

_TABLES = {"rules": {"rule_id", "json"}, "audit": {"id", "rule_id", "new_json"}}


@dataclass(frozen=True)
class RuleBookSnapshot:
    """The rule set of a rule book at one version.

    Attributes:
        rules: the rules, by id.
        version: the id of the last audit entry (0 for a book never changed).
    """

    rules: list[Rule]
    version: int


def _connect(path: str) -> sqlite3.Connection:
    """A read-only connection to an existing file (never creates or changes it)."""
    file = Path(path)
    if not file.exists():
        raise ConfigurationError(f"rule book {path!r} does not exist; create it with the demo")
    if not file.is_file():
        raise ConfigurationError(f"rule book {path!r} is not a file")
    uri = f"file:{quote(str(file.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"rule book {path!r} cannot be opened: {exc}") from exc
    return db


def _check_tables(db: sqlite3.Connection, path: str) -> None:
    for table, needed in _TABLES.items():
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not columns:
            raise ConfigurationError(
                f"{path!r} is not a rule book: it has no {table!r} table "
                "(give the rule book the demo or the service keeps, e.g. rules.db)"
            )
        if not needed <= columns:
            missing = ", ".join(sorted(needed - columns))
            raise ConfigurationError(
                f"{path!r} is not a rule book: table {table!r} lacks column(s) {missing}"
            )


def read_rule_book(path: str) -> RuleBookSnapshot:
    """The current rule set of the rule book at ``path`` and its version.

    Raises:
        ConfigurationError: the file is missing, not a database, not a rule book, or holds
            a rule that does not validate.
    """
    db = _connect(path)
    try:
        db.execute("BEGIN")  # one read transaction: the rules and the version agree
        _check_tables(db, path)
        count = db.execute("SELECT COUNT(*) FROM rules").fetchone()[0]
        if count > MAX_RULES:
            raise ConfigurationError(
                f"rule book {path!r} holds {count:,} rules; at most {MAX_RULES:,} are allowed"
            )
        rows = db.execute("SELECT rule_id, json FROM rules ORDER BY rule_id").fetchall()
        version = db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0]
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ConfigurationError(f"rule book {path!r} cannot be read: {exc}") from exc
    finally:
        db.close()
    rules = []
    for rule_id, text in rows:
        try:
            rules.append(parse_rule(text))
        except RuleValidationError as exc:
            raise ConfigurationError(f"rule book {path!r}, rule {rule_id!r}: {exc}") from exc
    return RuleBookSnapshot(rules, int(version))


class RuleBookSource(Source[str]):
    """The rule book's changes after ``after`` (an audit id), as rule JSON texts.

    Args:
        path: the book's SQLite file.
        after: emit audit entries with a larger id (the snapshot's version).
        poll_ms: how often the reader looks for new entries.
        follow: keep following (unbounded); when false the source ends at once.
    """

    max_parallelism = 1

    def __init__(self, path: str, after: int, poll_ms: int = 500, follow: bool = True) -> None:
        self.path = path
        self.after = after
        self.poll_ms = poll_ms
        self.follow = follow
        self.bounded = not follow

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[str]:
        """The one reader."""
        return _RuleBookReader(self)


class _RuleBookReader(SourceReader[str]):
    def __init__(self, source: RuleBookSource) -> None:
        self.source = source
        self.last = source.after
        self.next_poll = 0
        self.db: sqlite3.Connection | None = None
        self.context = ReaderContext()

    def open(self, context: ReaderContext) -> None:
        self.context = context
        if self.source.follow:
            self.db = _connect(self.source.path)

    def poll(self, max_records: int) -> Sequence[str] | None:
        if self.db is None:
            return None
        now = self.context.clock_ms()
        if now < self.next_poll:
            return []
        self.next_poll = now + self.source.poll_ms
        try:
            rows = self.db.execute(
                "SELECT id, new_json FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                (self.last, max_records),
            ).fetchall()
        except sqlite3.Error as exc:
            log.warning("rule book %r cannot be read now (%s); trying again", self.source.path, exc)
            return []
        out: list[str] = []
        for audit_id, text in rows:
            self.last = int(audit_id)
            if isinstance(text, str):
                out.append(text)
        if len(rows) == max_records:
            self.next_poll = now  # more are waiting: read on at the next poll
        return out

    def snapshot_position(self) -> Any:
        return self.last

    def restore_position(self, position: Any) -> None:
        self.last = int(position)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
