"""The rule book: versions, an audit log, refusals that change nothing; SQLite and memory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from fraudstream.exceptions import RuleValidationError
from fraudstream.fraud.rules import DEMO_RULES, RuleBook, RuleState


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        self.now += 1
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def book(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    path = None if request.param == "memory" else str(tmp_path / "rules.db")
    rule_book = RuleBook(path, clock_ms=Clock())
    yield rule_book
    rule_book.close()


def snapshot(book: RuleBook) -> tuple[Any, ...]:
    return (book.list(), book.audit(1000), [book.versions(i) for i in range(1, 6)])


def test_versions_and_audit(book: RuleBook) -> None:
    first = book.upsert(DEMO_RULES[0], actor="alice")
    assert first.version == 1 and book.get(1) == first
    second = book.upsert({**DEMO_RULES[0], "limit": 5}, actor="bob")
    assert second.version == 2 and book.get(1) == second
    paused = book.set_state(1, "pause", actor="carol")
    assert paused.version == 3 and paused.rule_state is RuleState.PAUSE
    tombstone = book.delete(1, actor="dave")
    assert tombstone.rule_state is RuleState.DELETE and tombstone.version == 4
    assert book.get(1) is None and book.list() == []
    again = book.upsert(DEMO_RULES[0], actor="erin")
    assert again.version == 5  # versions keep counting after a delete
    assert [r.version for r in book.versions(1)] == [1, 2, 3, 4, 5]
    audit = book.audit(limit=10)
    assert [(e.actor, e.action, e.version) for e in audit] == [
        ("erin", "create", 5),
        ("dave", "delete", 4),
        ("carol", "state", 3),
        ("bob", "update", 2),
        ("alice", "create", 1),
    ]
    assert audit[3].old is not None and audit[3].old["limit"] == 20_000_000
    assert audit[3].new is not None and audit[3].new["limit"] == 5
    assert audit[4].old is None and audit[0].at > audit[4].at
    assert [e.version for e in book.audit(limit=2, offset=1)] == [4, 3]
    assert audit[0].to_json_dict()["ruleId"] == 1


def test_delete_all_and_delete_state(book: RuleBook) -> None:
    for doc in DEMO_RULES:
        book.upsert(doc, actor="ops")
    assert book.upsert({**DEMO_RULES[1], "ruleState": "DELETE"}, actor="ops").version == 2
    tombstones = book.delete_all(actor="ops")
    assert [t.rule_id for t in tombstones] == [1, 3, 4]
    assert book.list() == []


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({**DEMO_RULES[0], "aggregatorFunctionType": "MEDIAN"}, "aggregatorFunctionType"),
        ({**DEMO_RULES[0], "groupingKeyNames": []}, "groupingKeyNames"),
        ({**DEMO_RULES[0], "windowMinutes": -1}, "windowMinutes"),
        ({**DEMO_RULES[0], "limit": "NaN"}, "limit"),
        ({"ruleState": "CONTROL", "controlType": "CLEAR_STATE_ALL"}, "ruleState"),
        ("{broken", "rule"),
        ("x" * 100_000, "rule"),
    ],
)
def test_refused_rules_leave_the_book_untouched(book: RuleBook, doc: Any, field: str) -> None:
    book.upsert(DEMO_RULES[0], actor="alice")
    before = snapshot(book)
    with pytest.raises(RuleValidationError) as info:
        book.upsert(doc, actor="mallory")
    assert field in info.value.errors
    assert snapshot(book) == before


def test_bad_actor_state_and_missing_rules(book: RuleBook) -> None:
    book.upsert(DEMO_RULES[0], actor="alice")
    before = snapshot(book)
    with pytest.raises(RuleValidationError) as info:
        book.upsert(DEMO_RULES[2], actor="")
    assert "actor" in info.value.errors
    with pytest.raises(RuleValidationError):
        book.set_state(1, "RUNNING", actor="alice")
    with pytest.raises(RuleValidationError):
        book.set_state(1, RuleState.CONTROL, actor="alice")
    with pytest.raises(KeyError):
        book.delete(99, actor="alice")
    with pytest.raises(KeyError):
        book.set_state(99, "ACTIVE", actor="alice")
    assert snapshot(book) == before


def test_sqlite_book_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "rules.db")
    book = RuleBook(path)
    book.upsert(DEMO_RULES[0], actor="alice")
    book.upsert(DEMO_RULES[2], actor="alice")
    book.close()
    reopened = RuleBook(path)
    assert [r.rule_id for r in reopened.list()] == [1, 3]
    assert reopened.upsert(DEMO_RULES[0], actor="bob").version == 2
    assert len(reopened.audit()) == 3
    reopened.close()


def test_concurrent_writers_get_distinct_versions(book: RuleBook) -> None:
    def write(n: int) -> None:
        for i in range(20):
            book.upsert({**DEMO_RULES[0], "limit": n * 100 + i}, actor=f"w{n}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.version for r in book.versions(1)] == list(range(1, 81))
