"""Hostile records mixed into good ones: every good one processed, every bad one a dead letter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.base import DeadLetter
from fraudstream.connectors.codecs import (
    CSV_HEADER,
    encode_transaction_csv,
    encode_transaction_json,
)
from fraudstream.connectors.deadletters import DeadLetterLogSink, RecordCounters, route_dead_letters
from fraudstream.connectors.files import CsvSource, JsonLinesSink, JsonLinesSource
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.transaction import Transaction
from fraudstream.testing import CapturingSink

MAX_BYTES = 2000
FIELDS = [
    "transactionId",
    "eventTime",
    "payeeId",
    "beneficiaryId",
    "paymentAmount",
    "paymentType",
    "ingestionTimestamp",
]

ids = st.integers(0, 2**63 - 1)
times = st.integers(946_684_800_000, 4_102_444_799_999)
good_transactions = st.builds(
    Transaction,
    ids,
    times,
    ids,
    ids,
    st.floats(0, 1e15, allow_nan=False, allow_infinity=False),
    st.sampled_from(["CSH", "CRD"]),
    times,
)


def as_dict(tx: Transaction) -> dict[str, Any]:
    return dict(json.loads(encode_transaction_json(tx)))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@st.composite
def hostile(draw: st.DrawFn) -> tuple[bytes, str]:
    """A bad line (no line break inside) and a fragment of the reason it must get."""
    base = as_dict(draw(good_transactions))
    field = draw(st.sampled_from(FIELDS))
    kind = draw(st.integers(0, 11))
    if kind == 0:
        text = draw(
            st.text(min_size=1, max_size=50).filter(lambda t: "\n" not in t and "\r" not in t)
        )
        return ("#" + text).encode(), "not valid JSON"
    if kind == 1:
        del base[field]
        return dumps(base), f"missing field {field!r}"
    if kind == 2:
        junk = draw(st.sampled_from(["text", [1, 2], {"nested": {"deep": [None]}}, None, True]))
        if field == "paymentAmount" and junk == "text":
            junk = [1]
        base[field] = junk
        return dumps(base), f"field {field!r} must be"
    if kind == 3:
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"]))
        line = dumps({**base, "paymentAmount": 0.0}).replace(
            b'"paymentAmount": 0.0', b'"paymentAmount": ' + literal
        )
        return line, "is not valid JSON"
    if kind == 4:
        base["paymentAmount"] = -draw(st.floats(0.001, 1e9))
        return dumps(base), "'paymentAmount' is negative"
    if kind == 5:
        name = draw(st.sampled_from(["eventTime", "ingestionTimestamp"]))
        too_early = st.integers(-(10**15), 946_684_799_999).filter(lambda t: t != 0)
        base[name] = draw(st.one_of(too_early, st.integers(4_102_444_800_000, 10**20)))
        return dumps(base), f"field {name!r} is"
    if kind == 6:
        line = dumps({**base, "paymentType": "@"})
        return line.replace(b'"@"', b'"\xff\xfe"'), "invalid UTF-8"
    if kind == 7:
        base["memo"] = "x" * draw(st.integers(MAX_BYTES, MAX_BYTES * 3))
        return dumps(base), "over the limit"
    if kind == 8:
        name = draw(st.sampled_from(["transactionId", "payeeId", "beneficiaryId"]))
        base[name] = draw(st.integers(2**63, 10**40))
        return dumps(base), "ids must be from 0 to 2**63-1"
    if kind == 9:
        line = dumps({**base, "paymentAmount": 1.5}).replace(b"1.5", b"1e999")
        return line, "'paymentAmount' is not finite"
    if kind == 10:
        depth = draw(st.integers(1, 200))
        return b"[" * depth + b"]" * depth, "not a JSON object"
    return dumps(draw(st.sampled_from([[base], "string", 42, None]))), "not a JSON object"


lines = st.lists(
    st.one_of(
        good_transactions.map(lambda tx: ("good", tx)), hostile().map(lambda bad: ("bad", bad))
    ),
    min_size=1,
    max_size=40,
)


def run_file_job(path: Path, source: Any) -> tuple[list[Any], list[DeadLetter], dict[str, int]]:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_batch_size(7)
    good = CapturingSink()
    dead = CapturingSink()
    env.from_source(source, WatermarkStrategy.no_watermarks(), "file").uid("file").sink_to(good)
    route_dead_letters(env, dead)
    result = env.execute("hostile")
    return good.results, dead.results, result.get_all_accumulator_results()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=lines)
def test_every_good_record_is_processed_every_bad_one_is_a_dead_letter(
    tmp_path_factory: pytest.TempPathFactory, items: list[tuple[str, Any]]
) -> None:
    path = tmp_path_factory.mktemp("hostile") / "input.jsonl"
    content = b""
    expected_good: list[Transaction] = []
    expected_bad: list[tuple[str, bytes, str]] = []
    for kind, item in items:
        if kind == "good":
            line = encode_transaction_json(item)
            expected_good.append(item)
        else:
            line, reason = item
            expected_bad.append((f"offset {len(content)}", line, reason))
        content += line + b"\n"
    path.write_bytes(content)
    source = JsonLinesSource(str(path), max_bytes=MAX_BYTES)
    good, dead, counters = run_file_job(path, source)
    assert good == expected_good
    assert len(dead) == len(expected_bad)
    for letter, (position, line, reason) in zip(dead, expected_bad):
        assert letter.position == position
        assert reason in letter.reason, (letter.reason, reason)
        assert letter.raw == line[: len(letter.raw)] and len(letter.raw) >= min(
            len(line), MAX_BYTES
        )
        assert letter.source == f"jsonl:{path}"
    assert counters["file.records_out"] == len(expected_good)
    assert counters["file.dead_letters"] == len(expected_bad)
    assert source.counters.snapshot() == {
        "records": len(expected_good),
        "deadLetters": len(expected_bad),
    }


def test_hostile_csv_rows(tmp_path: Path) -> None:
    tx = Transaction(1, 1_700_000_000_000, 2, 3, 4.5, "CSH", 1_700_000_000_000)
    good = encode_transaction_csv(tx)
    rows = [
        (good, None),
        (b"1,2,3", "CSV row has 3 columns, expected 7"),
        (good.replace(b"4.5", b"-4.5"), "'paymentAmount' is negative"),
        (good.replace(b"4.5", b"nan"), "'paymentAmount' must be a number"),
        (good.replace(b"CSH", b"\xff"), "invalid UTF-8"),
        (b'1,"open', "not valid CSV"),
        (good, None),
    ]
    path = tmp_path / "in.csv"
    path.write_bytes(CSV_HEADER + b"".join(row + b"\n" for row, _ in rows))
    got, dead, _ = run_file_job(path, CsvSource(str(path)))
    assert got == [tx, tx]
    offsets = []
    offset = len(CSV_HEADER)
    for row, reason in rows:
        if reason is not None:
            offsets.append((f"offset {offset}", reason))
        offset += len(row) + 1
    assert len(dead) == len(offsets) == 5
    for letter, (position, reason) in zip(dead, offsets):
        assert letter.position == position
        assert reason in letter.reason


MISSING = ", ".join(repr(name) for name in FIELDS)


def test_dead_letters_to_a_jsonl_file_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"oops\n"
        + encode_transaction_json(
            Transaction(1, 1_700_000_000_000, 2, 3, 1.0, "CSH", 1_700_000_000_000)
        )
        + b"\n{}\n"
    )
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(10)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path / "chk"))
    env.from_source(JsonLinesSource(str(path)), WatermarkStrategy.no_watermarks(), "in").sink_to(
        CapturingSink()
    )
    route_dead_letters(env, JsonLinesSink(str(tmp_path / "dead.jsonl")))
    env.execute()
    letters = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert letters == [
        {
            "source": f"jsonl:{path}",
            "position": "offset 0",
            "reason": "not valid JSON: Expecting value: line 1 column 1 (char 0)",
            "raw": "oops",
        },
        {
            "source": f"jsonl:{path}",
            "position": f"offset {path.read_bytes().index(b'{}')}",
            "reason": "missing fields " + MISSING,
            "raw": "{}",
        },
    ]


def test_dead_letters_of_several_sources_are_merged(tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    first.write_bytes(b"bad-a\n")
    second.write_bytes(b"bad-b\n")
    env = StreamExecutionEnvironment.get_execution_environment()
    a = env.from_source(JsonLinesSource(str(first)), WatermarkStrategy.no_watermarks(), "a")
    b = env.from_source(JsonLinesSource(str(second)), WatermarkStrategy.no_watermarks(), "b")
    a.union(b).sink_to(CapturingSink())
    dead = CapturingSink()
    route_dead_letters(env, dead)
    env.execute()
    assert sorted(d.raw for d in dead.results) == [b"bad-a", b"bad-b"]


def test_no_connector_source_means_nothing_to_route() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    assert route_dead_letters(env, CapturingSink()) is None


def test_the_default_destination_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    writer = DeadLetterLogSink().create_writer(0, 1)
    writer.write([DeadLetter(b"\xffbad", "not valid JSON", "jsonl:x", "offset 7")])
    err = capsys.readouterr().err
    assert err == "fraudstream: dead letter from jsonl:x at offset 7: not valid JSON: '\ufffdbad'\n"


def test_record_counters_survive_pickling() -> None:
    import pickle

    counters = RecordCounters()
    counters.add(5, 2)
    copy = pickle.loads(pickle.dumps(counters))
    copy.add(1, 1)
    assert copy.snapshot() == {"records": 6, "deadLetters": 3}
    assert counters.snapshot() == {"records": 5, "deadLetters": 2}


def test_print_sinks_write_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from fraudstream.connectors.specs import make_sink
    from fraudstream.exceptions import ConfigurationError

    letter = DeadLetter(b"x", "bad", "jsonl:in", "offset 0")
    make_sink("print:stderr", "dead-letters").create_writer(0, 1).write([letter])
    make_sink("print", "alerts").create_writer(0, 1).write([{"a": 1}])
    captured = capsys.readouterr()
    assert json.loads(captured.err) == letter.to_json_dict()
    assert captured.out == '{"a":1}\n'
    with pytest.raises(ConfigurationError, match="stdout or stderr, not 'printer'"):
        make_sink("print:printer", "alerts")
