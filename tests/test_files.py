"""JSONL and CSV files: sources (bounded, following, restorable) and exactly-once sinks."""

from __future__ import annotations

import contextlib
import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.base import DeadLetter, ReaderContext, SourceReader, WriterContext
from fraudstream.connectors.codecs import (
    CSV_HEADER,
    encode_transaction_csv,
    encode_transaction_json,
)
from fraudstream.connectors.files import (
    CsvSink,
    CsvSource,
    FileCommittable,
    JsonLinesSink,
    JsonLinesSource,
)
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.connectors.specs import make_sink, make_source
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError, JobFailedError
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import Alert, build_tutorial_job
from fraudstream.testing import Abort, AdvanceProcessingTime, ManualClock, ScriptedSource


def generated(count: int, seed: int = 1) -> list[Transaction]:
    reader = TransactionGenerator(seed=seed, count=count, tutorial_rate=0.01).create_reader(0, 1)
    out: list[Transaction] = []
    while (batch := reader.poll(500)) is not None:
        out.extend(batch)
    return out


def write_jsonl(path: Path, records: list[Transaction]) -> Path:
    path.write_bytes(b"".join(encode_transaction_json(tx) + b"\n" for tx in records))
    return path


OPENED: list[SourceReader[Any]] = []


@pytest.fixture(autouse=True)
def close_readers() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def open_reader(source: Any) -> tuple[SourceReader[Any], list[DeadLetter]]:
    dead: list[DeadLetter] = []
    reader = source.create_reader(0, 1)
    reader.open(ReaderContext(dead_letter=dead.append))
    OPENED.append(reader)
    return reader, dead


def drain(reader: SourceReader[Any], batch: int = 100) -> list[Any]:
    out: list[Any] = []
    while (records := reader.poll(batch)) is not None:
        out.extend(records)
    return out


# -- sources -------------------------------------------------------------------------------------
def test_jsonl_source_reads_every_transaction_with_its_event_time(tmp_path: Path) -> None:
    records = generated(2500)
    source = make_source(f"jsonl:{write_jsonl(tmp_path / 'tx.jsonl', records)}", "transactions")
    assert isinstance(source, JsonLinesSource) and source.bounded
    reader, dead = open_reader(source)
    got: list[Transaction] = []
    times: list[int] = []
    while (batch := reader.poll(333)) is not None:
        got.extend(batch)
        times.extend(reader.timestamps() or [])
    assert got == records and dead == []
    assert times == [tx.event_time for tx in records]
    assert source.counters.snapshot() == {"records": 2500, "deadLetters": 0}


def test_time_field_option_picks_another_field(tmp_path: Path) -> None:
    path = tmp_path / "tx.jsonl"
    records = [tx._replace(ingestion_timestamp=tx.event_time + 5) for tx in generated(10)]
    write_jsonl(path, records)
    reader, _ = open_reader(
        make_source(f"jsonl:{path},time-field=ingestionTimestamp", "transactions")
    )
    assert reader.poll(100) == records
    assert reader.timestamps() == [tx.event_time + 5 for tx in records]
    with pytest.raises(ConfigurationError, match="'nope' is not a transaction field"):
        make_source(f"jsonl:{path},time-field=nope", "transactions")


def test_plain_json_objects_with_a_time_field(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"t": 5, "x": 1}\n{"x": 2}\n{"t": "7"}\n')
    reader, dead = open_reader(make_source(f"jsonl:{path},time-field=t", "events"))
    assert drain(reader) == [{"t": 5, "x": 1}, {"t": "7"}]
    assert [(d.reason, d.position) for d in dead] == [
        ("time field 't' must be integer epoch milliseconds, got None", "offset 17")
    ]


@pytest.mark.parametrize("cut", [0, 1, 99, 250, 499, 500])
def test_restore_continues_after_the_last_line(tmp_path: Path, cut: int) -> None:
    records = generated(500)
    path = write_jsonl(tmp_path / "tx.jsonl", records)
    source = JsonLinesSource(str(path))
    reader, _ = open_reader(source)
    head: list[Transaction] = []
    while len(head) < cut:
        head.extend(reader.poll(min(37, cut - len(head))) or [])
    position = reader.snapshot_position()
    reader.close()
    resumed, _ = open_reader(source)
    resumed.restore_position(position)
    assert head + drain(resumed) == records


def test_blank_lines_crlf_and_a_last_line_without_newline(tmp_path: Path) -> None:
    records = generated(3)
    lines = [encode_transaction_json(tx) for tx in records]
    path = tmp_path / "tx.jsonl"
    path.write_bytes(lines[0] + b"\r\n\n   \n" + lines[1] + b"\n" + lines[2])
    reader, dead = open_reader(JsonLinesSource(str(path)))
    assert drain(reader) == records and dead == []


def test_an_over_long_line_is_a_dead_letter_and_reading_goes_on(tmp_path: Path) -> None:
    records = generated(2)
    path = tmp_path / "tx.jsonl"
    huge = b'{"pad": "' + b"x" * 5000 + b'"}'
    path.write_bytes(
        encode_transaction_json(records[0])
        + b"\n"
        + huge
        + b"\n"
        + encode_transaction_json(records[1])
        + b"\n"
    )
    reader, dead = open_reader(make_source(f"jsonl:{path},max-bytes=1000", "transactions"))
    assert drain(reader) == records
    offset = len(encode_transaction_json(records[0])) + 1
    assert [(d.position, d.reason) for d in dead] == [
        (f"offset {offset}", "record is over the limit of 1000 bytes (5012 bytes or more)")
    ]
    assert len(dead[0].raw) == 1000


def test_follow_waits_for_whole_lines_and_never_ends(tmp_path: Path) -> None:
    records = generated(4)
    lines = [encode_transaction_json(tx) + b"\n" for tx in records]
    path = tmp_path / "tx.jsonl"
    path.write_bytes(lines[0])
    source = make_source(f"jsonl:{path},follow=true", "transactions")
    assert not source.bounded
    reader, _ = open_reader(source)
    assert reader.poll(10) == records[:1]
    assert reader.poll(10) == []
    with path.open("ab") as handle:
        handle.write(lines[1] + lines[2][:20])
    assert reader.poll(10) == records[1:2]
    assert reader.poll(10) == []  # the third line is still being written
    with path.open("ab") as handle:
        handle.write(lines[2][20:] + lines[3])
    assert reader.poll(10) == records[2:]
    assert reader.poll(10) == []


def test_csv_source_with_header_reordered_columns_and_without_header(tmp_path: Path) -> None:
    records = generated(50)
    path = tmp_path / "tx.csv"
    path.write_bytes(CSV_HEADER + b"".join(encode_transaction_csv(tx) + b"\n" for tx in records))
    reader, dead = open_reader(make_source(f"csv:{path}", "transactions"))
    assert drain(reader) == records and dead == []
    bare = tmp_path / "bare.csv"
    bare.write_bytes(b"".join(encode_transaction_csv(tx) + b"\n" for tx in records))
    reader, _ = open_reader(make_source(f"csv:{bare},header=false", "transactions"))
    assert drain(reader) == records
    odd = tmp_path / "odd.csv"
    odd.write_bytes(
        b"paymentType,paymentAmount,transactionId,eventTime,payeeId,beneficiaryId,ingestionTimestamp\n"
        b"CRD,2.5,1,1700000000000,2,3,1700000000000\n"
    )
    reader, _ = open_reader(CsvSource(str(odd)))
    assert drain(reader) == [Transaction(1, 1_700_000_000_000, 2, 3, 2.5, "CRD", 1_700_000_000_000)]


def test_csv_restore_keeps_the_header(tmp_path: Path) -> None:
    records = generated(20)
    path = tmp_path / "tx.csv"
    path.write_bytes(CSV_HEADER + b"".join(encode_transaction_csv(tx) + b"\n" for tx in records))
    source = CsvSource(str(path))
    reader, _ = open_reader(source)
    head = list(reader.poll(7) or [])
    position = reader.snapshot_position()
    resumed, _ = open_reader(source)
    resumed.restore_position(position)
    assert head + drain(resumed) == records


def test_csv_rows_as_dicts_for_other_roles(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n3\n")
    reader, dead = open_reader(make_source(f"csv:{path}", "events"))
    assert drain(reader) == [{"a": "1", "b": "2"}]
    assert [d.reason for d in dead] == ["CSV row has 1 columns, expected 2"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("jsonl:{d}/missing.jsonl", "no such file"),
        ("jsonl:{d}", "a directory, not a file"),
        ("jsonl:", "give a file path"),
        ("jsonl:{d}/ok.jsonl,follow=maybe", "follow='maybe' must be true or false"),
        ("jsonl:{d}/ok.jsonl,max-bytes=0", "max-bytes must be >= 1"),
        ("jsonl:{d}/ok.jsonl,colour=red", "unknown option(s) colour"),
        ("jsonl:{d}/ok.jsonl,header=false", "unknown option(s) header"),
        ("csv:{d}/bad-header.csv", "CSV header lacks column(s) 'payeeId'"),
        ("csv:{d}/json.jsonl", "CSV header lacks column"),
    ],
)
def test_bad_source_specs_fail_before_the_job_runs(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "ok.jsonl").write_bytes(b"")
    (tmp_path / "bad-header.csv").write_bytes(b"transactionId,eventTime\n1,2\n")
    (tmp_path / "json.jsonl").write_bytes(b'{"transactionId": 1}\n')
    with pytest.raises(ConfigurationError) as info:
        make_source(spec.format(d=tmp_path), "transactions")
    assert message in str(info.value)


def test_a_file_source_in_a_job(tmp_path: Path) -> None:
    records = generated(3000)
    path = write_jsonl(tmp_path / "tx.jsonl", records)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    stream = env.from_source(JsonLinesSource(str(path)), WatermarkStrategy.no_watermarks(), "tx")
    assert list(stream.map(lambda t: t.transaction_id).execute_and_collect()) == [
        tx.transaction_id for tx in records
    ]


# -- sinks ---------------------------------------------------------------------------------------
def open_writer(sink: Any, exactly_once: bool) -> Any:
    writer = sink.create_writer(0, 1)
    writer.open(WriterContext(0, 1, exactly_once))
    return writer


def test_without_checkpoints_lines_appear_as_written_and_a_new_run_replaces_the_file(
    tmp_path: Path,
) -> None:
    out = tmp_path / "alerts.jsonl"
    out.write_text("old content\n")
    sink = make_sink(f"jsonl:{out}", "alerts")
    writer = open_writer(sink, exactly_once=False)
    writer.write([Alert(1, 10, 600.0)])
    assert json.loads(out.read_text()) == {
        "accountId": 1,
        "accountIdStr": "1",
        "timestamp": 10,
        "amount": 600.0,
    }
    writer.write([{"a": 1}, (2, "x")])
    assert out.read_text().splitlines()[1:] == ['{"a":1}', '[2,"x"]']
    writer.close()
    again = open_writer(JsonLinesSink(str(out)), exactly_once=False)
    again.write([{"b": 2}])
    assert out.read_text() == '{"b":2}\n'


def test_with_checkpoints_lines_appear_at_commit_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    sink = JsonLinesSink(str(out))
    writer = open_writer(sink, exactly_once=True)
    writer.write([{"n": 1}, {"n": 2}])
    assert not out.exists()
    first = writer.prepare_commit(1)
    writer.write([{"n": 3}])
    second = writer.prepare_commit(2)
    writer.commit([first])
    assert out.read_text() == '{"n":1}\n{"n":2}\n'
    writer.commit([first, second])  # committing again is harmless
    assert out.read_text() == '{"n":1}\n{"n":2}\n{"n":3}\n'
    empty = writer.prepare_commit(3)
    writer.commit([empty])
    assert out.read_text().count("\n") == 3


def test_a_restored_writer_continues_the_output_a_fresh_run_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    crashed = open_writer(JsonLinesSink(str(out)), exactly_once=True)
    crashed.write([{"n": 1}])
    committed = crashed.prepare_commit(1)
    crashed.commit([committed])
    crashed.write([{"n": 2}])
    sealed = crashed.prepare_commit(2)  # in checkpoint 2, which completed; commit lost in a crash
    crashed.write([{"n": 3}])  # never sealed: lost with the crash, replayed after restore
    restored = open_writer(JsonLinesSink(str(out)), exactly_once=True)  # a new process
    restored.commit([sealed])
    restored.write([{"n": 3}])
    restored.commit([restored.prepare_commit(3)])
    assert out.read_text() == '{"n":1}\n{"n":2}\n{"n":3}\n'
    fresh = open_writer(JsonLinesSink(str(out)), exactly_once=True)
    fresh.write([{"n": 9}])
    fresh.commit([fresh.prepare_commit(1)])
    assert out.read_text() == '{"n":9}\n'


@pytest.mark.parametrize("earlier_run", [False, True])
def test_restored_at_a_higher_parallelism_every_writer_continues_the_checkpoints_run(
    tmp_path: Path, earlier_run: bool
) -> None:
    out = tmp_path / "alerts.jsonl"
    if earlier_run:  # the file holds the output of a run before the one that crashed
        old = open_writer(JsonLinesSink(str(out)), exactly_once=True)
        old.write([{"old": 1}])
        old.commit([old.prepare_commit(1)])
    crashed = open_writer(JsonLinesSink(str(out)), exactly_once=True)
    crashed.write([{"n": 1}])
    sealed = crashed.prepare_commit(1)  # checkpoint 1 completed; the crash came before commit
    # Restored with 2 writers: writer 0 commits the sealed records again, writer 1 has
    # nothing to commit again, but writes to the same run's output (opened first, as the
    # executor opens sinks).
    sink = JsonLinesSink(str(out))
    writers = [sink.create_writer(i, 2) for i in (0, 1)]
    for i in (1, 0):
        writers[i].open(WriterContext(i, 2, True, restored=True, restored_committables=(sealed,)))
    writers[1].write([{"n": 2}])
    writers[1].commit([writers[1].prepare_commit(2)])
    writers[0].commit([sealed])
    writers[0].write([{"n": 3}])
    writers[0].commit([writers[0].prepare_commit(2)])
    assert sorted(json.loads(line)["n"] for line in out.read_text().splitlines()) == [1, 2, 3]


class CommitFailsOnce(JsonLinesSink):
    """A JSON-lines sink whose first commit fails: the job dies after its checkpoint 1
    completed but before the output of it was committed."""

    failed = False

    def create_writer(self, subtask_index: int, parallelism: int) -> Any:
        writer = super().create_writer(subtask_index, parallelism)
        commit = writer.commit

        def failing(committables: Any) -> None:
            if not CommitFailsOnce.failed:
                CommitFailsOnce.failed = True
                raise OSError("disk gone")
            commit(committables)

        writer.commit = failing  # type: ignore[method-assign]
        return writer


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_restored_at_a_higher_parallelism_before_its_first_commit_loses_nothing(
    tmp_path: Path, workers: int
) -> None:
    from _engine_jobs import LockstepSource

    records = [(i, i) for i in range(4000)]
    out = tmp_path / "out.jsonl"

    def run(parallelism: int, restore: bool) -> None:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism).set_worker_processes(workers).set_batch_size(100)
        env.enable_checkpointing(1)
        env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path / "chk"))
        if restore:
            env.restore_from("latest")
        source = LockstepSource(records, every=1000, readers=1)
        stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "src").uid("src")
        stream.map(lambda r: {"n": r[1]}).uid("fmt").sink_to(CommitFailsOnce(str(out))).uid("out")
        env.execute()

    CommitFailsOnce.failed = False
    with pytest.raises(JobFailedError, match="disk gone"):
        run(1, restore=False)
    assert [p.name for p in (tmp_path / "chk").glob("chk-*")] == ["chk-1"]
    run(2, restore=True)
    lines = [json.loads(line)["n"] for line in out.read_text().splitlines()]
    assert sorted(lines) == list(range(4000))


def test_an_append_cut_short_by_a_crash_is_undone(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    writer = open_writer(JsonLinesSink(str(out)), exactly_once=True)
    writer.write([{"n": 1}])
    writer.commit([writer.prepare_commit(1)])
    writer.write([{"n": 2}])
    sealed: FileCommittable = writer.prepare_commit(2)
    # The crash: the log says the append began, half of it reached the file.
    log = tmp_path / ".alerts.jsonl.commits"
    with log.open("a") as handle:
        handle.write(f"B {sealed.token} {out.stat().st_size}\nC partial-line-cut")
    with out.open("ab") as handle:
        handle.write(sealed.data[:3])
    restored = open_writer(JsonLinesSink(str(out)), exactly_once=True)
    restored.commit([sealed])
    assert out.read_text() == '{"n":1}\n{"n":2}\n'
    restored.commit([sealed])
    assert out.read_text() == '{"n":1}\n{"n":2}\n'


def test_csv_sink_writes_a_header_and_rows(tmp_path: Path) -> None:
    out = tmp_path / "alerts.csv"
    writer = open_writer(make_sink(f"csv:{out}", "alerts"), exactly_once=True)
    writer.write([Alert(1, 10, 600.5), Alert(2, 20, 700.0)])
    writer.commit([writer.prepare_commit(1)])
    writer.write([{"accountId": 3, "timestamp": 30}])
    writer.commit([writer.prepare_commit(2)])
    assert out.read_text().splitlines() == [
        "accountId,accountIdStr,timestamp,amount",
        "1,1,10,600.5",
        "2,2,20,700.0",
        "3,,30,",
    ]


def test_csv_sink_writes_nested_values_as_json(tmp_path: Path) -> None:
    out = tmp_path / "nested.csv"
    writer = open_writer(CsvSink(str(out)), exactly_once=False)
    writer.write([{"key": {"payeeId": 1, "note": "a,b"}, "n": 1}])
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["key", "n"]
    assert json.loads(rows[1][0]) == {"payeeId": 1, "note": "a,b"}


def test_csv_sink_round_trips_transactions(tmp_path: Path) -> None:
    out = tmp_path / "tx.csv"
    records = generated(30)
    writer = open_writer(CsvSink(str(out)), exactly_once=False)
    writer.write(records)
    reader, dead = open_reader(CsvSource(str(out)))
    assert drain(reader) == records and dead == []


def test_csv_sink_refuses_records_with_unknown_columns(tmp_path: Path) -> None:
    writer = open_writer(CsvSink(str(tmp_path / "x.csv")), exactly_once=False)
    writer.write([{"a": 1}])
    with pytest.raises(ValueError, match=r"fields \['b'\] that are not CSV columns"):
        writer.write([{"a": 1, "b": 2}])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("jsonl:{d}/no/such/dir/out.jsonl", "no such directory"),
        ("jsonl:{d}", "is a directory"),
        ("jsonl:", "give a file path"),
        ("jsonl:{d}/x.jsonl,mode=append", "file sinks take no options"),
        ("csv:", "give a file path"),
    ],
)
def test_bad_sink_specs(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_sink(spec.format(d=tmp_path), "alerts")
    assert message in str(info.value)


# -- abort and resume through the engine ---------------------------------------------------------
TX = [((i * 7919) % 23, i, 0.5 if i % 3 == 0 else 600.0) for i in range(240)]


def script(abort_at: int | None) -> list[Any]:
    steps: list[Any] = []
    for i, tx in enumerate(TX):
        if i % 20 == 0:
            steps.append(AdvanceProcessingTime(1000))
        if abort_at is not None and i == abort_at:
            steps.append(Abort())
        steps.append(tx)
    return steps


def run_job(
    steps: list[Any], out: Path, checkpoints: Path, parallelism: int, restore: bool
) -> None:
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock).set_parallelism(parallelism).set_batch_size(8)
    env.enable_checkpointing(1000)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoints))
    if restore:
        env.restore_from("latest")
    stream = env.from_source(
        ScriptedSource(steps, clock), WatermarkStrategy.no_watermarks(), "tx"
    ).uid("tx")
    build_tutorial_job(stream).sink_to(JsonLinesSink(str(out))).uid("out")
    with contextlib.suppress(JobFailedError):
        env.execute()


@settings(max_examples=8, deadline=None)
@given(abort_at=st.integers(1, len(TX) - 1), parallelism=st.sampled_from([1, 2]))
def test_abort_and_resume_writes_the_file_of_an_uninterrupted_run(
    tmp_path_factory: pytest.TempPathFactory, abort_at: int, parallelism: int
) -> None:
    plain = tmp_path_factory.mktemp("plain")
    run_job(script(None), plain / "out.jsonl", plain / "chk", parallelism, restore=False)
    expected = (plain / "out.jsonl").read_text()
    crash = tmp_path_factory.mktemp("crash")
    out = crash / "out.jsonl"
    run_job(script(abort_at), out, crash / "chk", parallelism, restore=False)
    restore = any((crash / "chk").glob("chk-*"))
    run_job(script(abort_at) if restore else script(None), out, crash / "chk", parallelism, restore)
    assert expected.count("\n") > 10
    if parallelism == 1:
        assert out.read_text() == expected
    else:
        assert Counter(out.read_text().splitlines()) == Counter(expected.splitlines())


def test_rules_from_a_jsonl_file(tmp_path: Path) -> None:
    from fraudstream.fraud.rules import Rule

    path = tmp_path / "rules.jsonl"
    good = {
        "ruleId": 7, "ruleState": "ACTIVE", "groupingKeyNames": ["payeeId"],
        "aggregateFieldName": "paymentAmount", "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER", "limit": 10, "windowMinutes": 5,
    }  # fmt: skip
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "limit": "lots"}) + "\n")
    reader, dead = open_reader(make_source(f"jsonl:{path}", "rules"))
    rules = drain(reader)
    assert len(rules) == 1 and isinstance(rules[0], Rule) and rules[0].rule_id == 7
    assert reader.timestamps() is None
    assert len(dead) == 1 and dead[0].reason.startswith("invalid rule: limit:")
    with pytest.raises(ConfigurationError, match="rules are JSON"):
        make_source(f"csv:{path}", "rules")


def test_following_a_file_that_is_truncated_fails_clearly(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "tx.jsonl", generated(3))
    reader, _ = open_reader(make_source(f"jsonl:{path},follow=true", "transactions"))
    assert len(reader.poll(10) or []) == 3
    path.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="shrank below the read position"):
        reader.poll(10)


def test_an_unexpected_decoder_error_is_a_dead_letter_too(tmp_path: Path) -> None:
    class Fussy(JsonLinesSource):
        def _decoder(self, header: bytes | None) -> Any:
            def decode(raw: bytes) -> Any:
                if raw == b"boom":
                    raise KeyError("surprise")
                return raw

            return decode

    path = tmp_path / "x.jsonl"
    path.write_bytes(b"a\nboom\nb\n")
    reader, dead = open_reader(Fussy(str(path), role="raw"))
    assert drain(reader) == [b"a", b"b"]
    assert [(d.reason, d.position) for d in dead] == [
        ("cannot decode: KeyError: 'surprise'", "offset 2")
    ]


def test_following_a_csv_file_whose_header_is_not_written_yet(tmp_path: Path) -> None:
    records = generated(2)
    path = tmp_path / "tx.csv"
    path.write_bytes(b"")
    reader, dead = open_reader(make_source(f"csv:{path},follow=true", "transactions"))
    assert reader.poll(10) == []
    path.write_bytes(CSV_HEADER[:10])
    assert reader.poll(10) == []
    path.write_bytes(CSV_HEADER + encode_transaction_csv(records[0]) + b"\n")
    assert reader.poll(10) == records[:1]
    with path.open("ab") as handle:
        handle.write(encode_transaction_csv(records[1]) + b"\n")
    assert reader.poll(10) == records[1:] and dead == []


def test_following_waits_for_the_end_of_an_over_long_line(tmp_path: Path) -> None:
    record = generated(1)[0]
    path = tmp_path / "tx.jsonl"
    path.write_bytes(b"x" * 600)
    reader, dead = open_reader(
        make_source(f"jsonl:{path},follow=true,max-bytes=250", "transactions")
    )
    assert reader.poll(10) == [] and dead == []
    with path.open("ab") as handle:
        handle.write(b"x" * 50 + b"\n" + encode_transaction_json(record) + b"\n")
    assert reader.poll(10) == [record]
    assert [(d.position, d.reason) for d in dead] == [
        ("offset 0", "record is over the limit of 250 bytes (651 bytes or more)")
    ]
    assert reader.poll(10) == []


def test_the_commit_log_is_compacted_and_stays_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudstream.connectors.files import _sink

    monkeypatch.setattr(_sink, "_COMPACT_LINES", 20)
    monkeypatch.setattr(_sink, "_KEEP_TOKENS", 5)
    out = tmp_path / "alerts.jsonl"
    writer = open_writer(JsonLinesSink(str(out)), exactly_once=True)
    sealed = []
    for n in range(30):
        writer.write([{"n": n}])
        sealed.append(writer.prepare_commit(n + 1))
        writer.commit([sealed[-1]])
    log = tmp_path / ".alerts.jsonl.commits"
    assert len(log.read_text().splitlines()) <= 21
    writer.commit(sealed[-5:])  # the newest tokens are still known: nothing appended twice
    assert [json.loads(line)["n"] for line in out.read_text().splitlines()] == list(range(30))
