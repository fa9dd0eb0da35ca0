"""The SQLite alert store: filters, keyset pages, exactly-once commits, bad input."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.base import WriterContext
from fraudstream.connectors.specs import make_sink
from fraudstream.connectors.sqlite import AlertStore, SqliteAlertSink
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError, JobFailedError
from fraudstream.fraud.tutorial import Alert, build_tutorial_job
from fraudstream.testing import Abort, AdvanceProcessingTime, ManualClock, ScriptedSource


def rule_alert(n: int, rule: int, key: str, when: int) -> dict[str, Any]:
    return {
        "ruleId": rule,
        "key": key,
        "alertTime": when,
        "n": n,
        "triggeringEvent": {"transactionId": 2**63 - 1 - n, "transactionIdStr": str(2**63 - 1 - n)},
    }


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with AlertStore(tmp_path / "alerts.db") as opened:
        yield opened


def test_add_query_and_count_with_filters(store: AlertStore) -> None:
    alerts = [rule_alert(i, 1 + i % 3, f"k{i % 5}", 1000 + i * 10) for i in range(60)]
    assert store.add_many(alerts) == 60
    assert store.count() == 60
    page = store.query(limit=5)
    assert [a["n"] for a in page.items] == [59, 58, 57, 56, 55]
    assert page.items[0]["triggeringEvent"]["transactionId"] == 2**63 - 1 - 59
    assert store.count(rule_id=2) == 20
    assert {a["ruleId"] for a in store.query(rule_id=2, limit=100).items} == {2}
    assert [a["n"] for a in store.query(key="k3", rule_id=1, limit=100).items] == [48, 33, 18, 3]
    window = store.query(since_ms=1100, until_ms=1200, limit=100).items
    assert sorted(a["n"] for a in window) == list(range(10, 20))
    assert store.count(since_ms=1100, until_ms=1200) == 10
    assert store.query(rule_id=99).items == [] and store.query(rule_id=99).next_before is None


def test_tutorial_alerts_are_stored_by_account_and_timestamp(store: AlertStore) -> None:
    store.add_many([Alert(7, 5000, 600.0).to_json_dict()])
    assert store.query(key="7").items == [
        {"accountId": 7, "accountIdStr": "7", "timestamp": 5000, "amount": 600.0}
    ]
    assert store.count(since_ms=5000, until_ms=5001) == 1


@settings(max_examples=30, deadline=None)
@given(
    total=st.integers(0, 80),
    limit=st.integers(1, 25),
    rule=st.one_of(st.none(), st.integers(1, 3)),
)
def test_paging_visits_every_alert_once_newest_first(
    tmp_path_factory: pytest.TempPathFactory, total: int, limit: int, rule: int | None
) -> None:
    with AlertStore(tmp_path_factory.mktemp("pages") / "a.db") as store:
        store.add_many([rule_alert(i, 1 + i % 3, "k", i) for i in range(total)])
        seen: list[int] = []
        before = None
        while True:
            page = store.query(rule_id=rule, limit=limit, before=before)
            assert len(page.items) <= limit
            seen.extend(a["n"] for a in page.items)
            if page.next_before is None:
                break
            assert len(page.items) == limit
            before = page.next_before
        expected = [i for i in reversed(range(total)) if rule is None or 1 + i % 3 == rule]
        assert seen == expected


def test_queries_use_the_indexes(store: AlertStore) -> None:
    store.add_many([rule_alert(i, 1, "k", i) for i in range(10)])
    filter_sets: list[tuple[dict[str, Any], str]] = [
        ({"rule_id": 1}, "alerts_by_rule"),
        ({"key": "k"}, "alerts_by_key"),
        ({"since_ms": 3}, "alerts_by_time"),
        ({"since_ms": 3, "until_ms": 5}, "alerts_by_time"),
    ]
    for filters, index in filter_sets:
        args: dict[str, Any] = {"rule_id": None, "key": None, "since_ms": None, "until_ms": None}
        args.update(filters)
        sql, params = store._select(**args, limit=10, before=None)
        plan = " ".join(str(row) for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert index in plan


def test_committed_batches_are_inserted_once(store: AlertStore) -> None:
    batch = [rule_alert(1, 1, "k", 1), rule_alert(2, 1, "k", 2)]
    assert store.add_committed("w-1", batch) == 2
    assert store.add_committed("w-1", batch) == 0
    assert store.add_committed("w-2", batch[:1]) == 1
    assert store.count() == 3


def test_a_failed_insert_leaves_nothing_behind(store: AlertStore) -> None:
    with pytest.raises(TypeError, match="alerts are dicts"):
        store.add_many([rule_alert(1, 1, "k", 1), "not an alert"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="cannot write"):
        store.add_committed("t", [{"x": float("nan")}])
    assert store.count() == 0
    assert store.add_committed("t", [{"x": 1}]) == 1  # the failed token was not recorded


@pytest.mark.parametrize("limit", [0, -1, 1001, True, 2.5])
def test_bad_limits_are_refused(store: AlertStore, limit: Any) -> None:
    with pytest.raises(ConfigurationError, match="limit must be an integer from 1 to 1000"):
        store.query(limit=limit)


def test_bad_paths_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory"):
        AlertStore(tmp_path)
    with pytest.raises(ConfigurationError, match="no such directory"):
        AlertStore(tmp_path / "nope" / "a.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        AlertStore(junk)
    with pytest.raises(ConfigurationError, match="'sqlite:': give a database path"):
        make_sink("sqlite:", "alerts")
    with pytest.raises(ConfigurationError, match="takes no options"):
        make_sink(f"sqlite:{tmp_path}/a.db,x=1", "alerts")


def test_readers_and_a_writer_in_threads(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    writer_store = AlertStore(path)
    reader_store = AlertStore(path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(50):
                writer_store.add_many([rule_alert(i, 1, "k", i)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    counts = []
    while thread.is_alive():
        counts.append(reader_store.count())
    thread.join()
    assert errors == []
    assert counts == sorted(counts)
    assert reader_store.count() == 50
    writer_store.close()
    reader_store.close()


def test_sink_without_checkpoints_inserts_as_it_goes(tmp_path: Path) -> None:
    sink = make_sink(f"sqlite:{tmp_path / 'a.db'}", "alerts")
    assert isinstance(sink, SqliteAlertSink)
    writer = sink.create_writer(0, 1)
    writer.open(WriterContext(0, 1, exactly_once=False))
    writer.write([Alert(1, 10, 600.0)])
    with AlertStore(tmp_path / "a.db") as store:
        assert store.count() == 1
    with pytest.raises(TypeError, match="stores alerts"):
        writer.write([42])
    writer.close()


TX = [((i * 7919) % 23, i, 0.5 if i % 3 == 0 else 600.0) for i in range(200)]


def script(abort_at: int | None) -> list[Any]:
    steps: list[Any] = []
    for i, tx in enumerate(TX):
        if i % 20 == 0:
            steps.append(AdvanceProcessingTime(1000))
        if abort_at is not None and i == abort_at:
            steps.append(Abort())
        steps.append(tx)
    return steps


def run_job(steps: list[Any], db: Path, checkpoints: Path, restore: bool) -> None:
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock).set_parallelism(2).set_batch_size(8)
    env.enable_checkpointing(1000)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoints))
    if restore:
        env.restore_from("latest")
    stream = env.from_source(
        ScriptedSource(steps, clock), WatermarkStrategy.no_watermarks(), "tx"
    ).uid("tx")
    build_tutorial_job(stream).sink_to(SqliteAlertSink(db)).uid("alerts")
    with contextlib.suppress(JobFailedError):
        env.execute()


@settings(max_examples=8, deadline=None)
@given(abort_at=st.integers(1, len(TX) - 1))
def test_abort_and_resume_stores_each_alert_once(
    tmp_path_factory: pytest.TempPathFactory, abort_at: int
) -> None:
    plain = tmp_path_factory.mktemp("plain")
    run_job(script(None), plain / "a.db", plain / "chk", restore=False)
    crash = tmp_path_factory.mktemp("crash")
    run_job(script(abort_at), crash / "a.db", crash / "chk", restore=False)
    restore = any((crash / "chk").glob("chk-*"))
    run_job(script(abort_at) if restore else script(None), crash / "a.db", crash / "chk", restore)
    with AlertStore(plain / "a.db") as expected, AlertStore(crash / "a.db") as got:
        want = Counter(str(a) for a in expected.iter_all())
        assert len(want) > 10
        assert Counter(str(a) for a in got.iter_all()) == want
