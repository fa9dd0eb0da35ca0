"""``fraudstream job rules --rules sqlite:PATH`` starts from a real rule book and follows it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudstream.cli import main
from fraudstream.connectors.base import ReaderContext
from fraudstream.connectors.sqlite import AlertStore
from fraudstream.exceptions import ConfigurationError
from fraudstream.fraud.rules import RuleBook
from fraudstream.fraud.rules.booksource import RuleBookSource, read_rule_book
from fraudstream.fraud.rules.model import parse_rule

SOURCE = "generator:count=20000,seed=4"


def rule(rule_id: int, limit: int, state: str = "ACTIVE", minutes: int = 1) -> dict[str, object]:
    return {
        "ruleId": rule_id,
        "ruleState": state,
        "groupingKeyNames": ["paymentType"],
        "aggregateFieldName": "COUNT_FLINK",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": ">=",
        "limit": limit,
        "windowMinutes": minutes,
    }


def book(path: Path, *rules: dict[str, object]) -> Path:
    rule_book = RuleBook(str(path))
    for r in rules:
        rule_book.upsert(r, "tester")
    rule_book.close()
    return path


def alert_keys(path: Path) -> set[tuple[int, int]]:
    return {
        (a["ruleId"], a["triggeringEvent"]["transactionId"])
        for a in map(json.loads, path.read_text().splitlines())
    }


def run(tmp_path: Path, name: str, rules: str, *extra: str) -> set[tuple[int, int]]:
    out = tmp_path / f"{name}.jsonl"
    args = ["job", "rules", "--source", SOURCE, "--rules", rules, "--sink", f"jsonl:{out}"]
    assert main([*args, *extra]) == 0
    return alert_keys(out)


def test_the_job_starts_from_the_rule_books_current_rules(tmp_path: Path) -> None:
    path = book(tmp_path / "rules.db", rule(9, 400), rule(10, 300), rule(11, 50, "PAUSE"))
    RuleBook(str(path)).delete(10, "tester")  # deleted: not in force
    from_book = run(tmp_path, "book", f"sqlite:{path}")
    assert from_book and {r for r, _ in from_book} == {9}
    # The same rule from a rules file raises the same alerts.
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps([rule(9, 400)]))
    assert run(tmp_path, "file", str(rules_file)) == from_book
    # ... and so does the book in two worker processes.
    assert run(tmp_path, "w2", f"sqlite:{path}", "-p", "2", "--workers", "2") == from_book


def test_an_empty_rule_book_raises_no_alert(tmp_path: Path) -> None:
    assert run(tmp_path, "empty", f"sqlite:{book(tmp_path / 'empty.db')}") == set()


def usage_error(capsys: pytest.CaptureFixture[str], rules: str) -> str:
    code = main(["job", "rules", "--source", "generator:count=10", "--rules", rules])
    assert code == 2
    return capsys.readouterr().err


def test_a_missing_rule_book_is_a_usage_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nowhere.db"
    assert "does not exist" in usage_error(capsys, f"sqlite:{path}")
    assert not path.exists()
    assert "give the rule book's path" in usage_error(capsys, "sqlite:")
    assert "is not a file" in usage_error(capsys, f"sqlite:{tmp_path}")


def test_a_database_that_is_not_a_rule_book_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "alerts.db"
    AlertStore(str(path)).close()
    before = path.read_bytes()
    err = usage_error(capsys, f"sqlite:{path}")
    assert "is not a rule book" in err and "'rules'" in err
    assert path.read_bytes() == before  # opened read-only: no table was added
    odd = tmp_path / "odd.db"
    with sqlite3.connect(odd) as db:
        db.execute("CREATE TABLE rules (rule_id INTEGER)")
        db.execute("CREATE TABLE audit (id INTEGER)")
    assert "lacks column(s) json" in usage_error(capsys, f"sqlite:{odd}")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_a_corrupt_rule_book_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    path = tmp_path / "rules.db"
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    else:
        book(path, *(rule(i, 100 + i) for i in range(1, 200)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"\0" * len(data))
    err = usage_error(capsys, f"sqlite:{path}")
    assert f"rule book {str(path)!r}" in err
    assert "Traceback" not in err


def test_a_hostile_row_in_the_rule_book_is_refused_naming_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = book(tmp_path / "rules.db", rule(1, 100))
    with sqlite3.connect(path) as db:
        bad = json.dumps({**rule(7, 1), "windowMinutes": -5})
        db.execute("INSERT INTO rules (rule_id, version, json) VALUES (7, 1, ?)", (bad,))
        db.execute("INSERT INTO rules (rule_id, version, json) VALUES (8, 1, ?)", ("{" * 100_000,))
    err = usage_error(capsys, f"sqlite:{path}")
    assert "rule 7" in err and "windowMinutes" in err


def test_bad_rule_book_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = book(tmp_path / "rules.db")
    assert "unknown option(s) colour" in usage_error(capsys, f"sqlite:{path},colour=red")
    assert "expected yes or no" in usage_error(capsys, f"sqlite:{path},follow=maybe")
    assert "poll-ms must be >= 1" in usage_error(capsys, f"sqlite:{path},poll-ms=0")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def test_the_reader_follows_changes_after_the_snapshot_in_order(tmp_path: Path) -> None:
    path = book(tmp_path / "rules.db", rule(1, 100))
    snapshot = read_rule_book(str(path))
    assert [r.rule_id for r in snapshot.rules] == [1] and snapshot.version == 1
    source = RuleBookSource(str(path), snapshot.version, poll_ms=100)
    assert not source.bounded and source.max_parallelism == 1
    reader = source.create_reader(0, 1)
    clock = Clock()
    reader.open(ReaderContext(clock_ms=clock))
    try:
        assert reader.poll(10) == []
        writer = RuleBook(str(path))
        writer.upsert(rule(2, 50), "alice")
        writer.upsert(rule(1, 200), "bob")
        writer.delete(2, "alice")
        assert reader.poll(10) == []  # not yet time to look again
        clock.now += 100
        changes = [parse_rule(text) for text in reader.poll(2)]  # type: ignore[union-attr]
        assert [(r.rule_id, r.limit, r.version) for r in changes] == [(2, 50, 1), (1, 200, 2)]
        position = reader.snapshot_position()
        rest = [parse_rule(text) for text in reader.poll(10)]  # type: ignore[union-attr]
        assert [(r.rule_id, r.rule_state.value) for r in rest] == [(2, "DELETE")]
        # A restored reader continues after the position it checkpointed.
        again = source.create_reader(0, 1)
        again.open(ReaderContext(clock_ms=clock))
        again.restore_position(position)
        assert [parse_rule(t).rule_id for t in again.poll(10)] == [2]  # type: ignore[union-attr]
        again.close()
        writer.close()
    finally:
        reader.close()
    assert RuleBookSource(str(path), 0, follow=False).create_reader(0, 1).poll(10) is None


def test_follow_no_reads_only_the_snapshot(tmp_path: Path) -> None:
    path = book(tmp_path / "rules.db", rule(9, 400))
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_rule_book(str(tmp_path / "missing.db"))
    out = tmp_path / "a.jsonl"
    # Bounded by default: the job ends with its transactions.
    assert main(["job", "rules", "--source", SOURCE, "--rules", f"sqlite:{path},follow=no",
                 "--sink", f"jsonl:{out}"]) == 0  # fmt: skip
    assert {r for r, _ in alert_keys(out)} == {9}


def test_a_running_job_follows_changes_to_the_rule_book(tmp_path: Path) -> None:
    """A live job (unbounded transactions) picks up a rule added to the book while it runs."""
    path = book(tmp_path / "rules.db", rule(9, 300))
    out = tmp_path / "alerts.jsonl"
    command = [
        sys.executable, "-m", "fraudstream", "job", "rules",
        "--source", "generator:rate=3000,seed=2,time=clock",
        "--rules", f"sqlite:{path},poll-ms=50", "--sink", f"jsonl:{out}",
    ]  # fmt: skip
    log = tmp_path / "job.log"
    with log.open("w") as errors, subprocess.Popen(command, stderr=errors) as job:
        try:
            deadline = time.monotonic() + 30
            added = False
            seen: set[int] = set()
            while time.monotonic() < deadline and 10 not in seen:
                assert job.poll() is None, log.read_text()
                if out.exists():
                    seen = {rule_id for rule_id, _ in alert_keys_partial(out)}
                if not added and 9 in seen:  # the job runs on the book's snapshot: change it
                    writer = RuleBook(str(path))
                    writer.upsert(rule(10, 20), "analyst")
                    writer.close()
                    added = True
                time.sleep(0.05)  # polling the output file for the job's progress, not timing
            assert added and 10 in seen
        finally:
            job.terminate()
            job.wait(timeout=30)


def alert_keys_partial(path: Path) -> set[tuple[int, int]]:
    """Alerts of complete lines of a file the job is still writing."""
    lines = path.read_text().split("\n")[:-1]
    return {(a["ruleId"], a["triggeringEvent"]["transactionId"]) for a in map(json.loads, lines)}
