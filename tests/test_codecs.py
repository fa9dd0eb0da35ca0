"""Transaction codecs: round trips, and a precise reason for every kind of bad record."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.connectors.base import DeadLetter
from fraudstream.connectors.codecs import (
    CSV_HEADER,
    MAX_ID,
    CsvColumns,
    decode_json_object,
    decode_transaction_csv,
    decode_transaction_json,
    encode_transaction_csv,
    encode_transaction_json,
    to_json_bytes,
    transaction_to_json_dict,
)
from fraudstream.exceptions import InvalidRecordError
from fraudstream.fraud.transaction import Transaction
from fraudstream.fraud.tutorial import Alert

GOOD: dict[str, Any] = {
    "transactionId": 1,
    "eventTime": 1_700_000_000_000,
    "payeeId": 2,
    "beneficiaryId": 3,
    "paymentAmount": 12.5,
    "paymentType": "CSH",
    "ingestionTimestamp": 1_700_000_000_001,
}

ids = st.integers(0, MAX_ID)
times = st.integers(946_684_800_000, 4_102_444_799_999)
transactions = st.builds(
    Transaction,
    ids,
    times,
    ids,
    ids,
    st.floats(0, 1e15, allow_nan=False, allow_infinity=False),
    st.sampled_from(["CSH", "CRD"]),
    times,
)


def with_field(name: str, value: Any) -> bytes:
    return json.dumps({**GOOD, name: value}).encode()


def reason_of(raw: bytes) -> str:
    with pytest.raises(InvalidRecordError) as info:
        decode_transaction_json(raw)
    return info.value.reason


@given(transactions)
def test_json_round_trip(tx: Transaction) -> None:
    raw = encode_transaction_json(tx)
    assert b"\n" not in raw
    assert decode_transaction_json(raw) == tx
    assert json.loads(raw) == transaction_to_json_dict(tx)
    assert to_json_bytes(tx) == raw


@given(transactions)
def test_csv_round_trip(tx: Transaction) -> None:
    assert decode_transaction_csv(encode_transaction_csv(tx)) == tx


def test_good_record_decodes() -> None:
    tx = decode_transaction_json(json.dumps(GOOD).encode())
    assert tx == Transaction(1, 1_700_000_000_000, 2, 3, 12.5, "CSH", 1_700_000_000_001)
    assert type(tx.payment_amount) is float


def test_decimal_strings_and_string_ids_are_accepted() -> None:
    tx = decode_transaction_json(
        with_field("paymentAmount", "1234.56").replace(
            b'"transactionId": 1', b'"transactionId": "9223372036854775807"'
        )
    )
    assert tx.payment_amount == 1234.56
    assert tx.transaction_id == MAX_ID


def test_an_unstamped_ingestion_timestamp_is_accepted() -> None:
    assert decode_transaction_json(with_field("ingestionTimestamp", 0)).ingestion_timestamp == 0
    assert decode_transaction_csv(b"1,1700000000000,2,3,1.5,CSH,0").ingestion_timestamp == 0
    assert "field 'eventTime' is 0" in reason_of(with_field("eventTime", 0))


def test_extra_fields_are_ignored() -> None:
    raw = json.dumps({**GOOD, "note": {"nested": [1, 2]}}).encode()
    assert decode_transaction_json(raw).payee_id == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON: Expecting value"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "not a JSON object (got a JSON array)"),
        (b"42", "not a JSON object (got a JSON number)"),
        (b'{"a": 1', "not valid JSON"),
        (b"\xff\xfe{}", "invalid UTF-8 at byte 0"),
        (b'{"x": "\xc3"}', "invalid UTF-8 at byte 7"),
        (
            json.dumps({k: v for k, v in GOOD.items() if k != "payeeId"}).encode(),
            "missing field 'payeeId'",
        ),
        (b"{}", "missing fields 'transactionId', 'eventTime'"),
        (with_field("payeeId", "abc"), "field 'payeeId' must be an integer id, got string 'abc'"),
        (with_field("payeeId", 1.5), "field 'payeeId' must be an integer id, got number 1.5"),
        (with_field("payeeId", True), "field 'payeeId' must be an integer id, got boolean True"),
        (with_field("payeeId", None), "field 'payeeId' must be an integer id, got null"),
        (with_field("payeeId", {"a": [1]}), "field 'payeeId' must be an integer id, got object"),
        (with_field("payeeId", -1), "field 'payeeId' is -1; ids must be from 0 to 2**63-1"),
        (with_field("transactionId", 2**63), "ids must be from 0 to 2**63-1"),
        (with_field("transactionId", 10**30), "ids must be from 0 to 2**63-1"),
        (with_field("paymentAmount", -0.5), "field 'paymentAmount' is negative (-0.5)"),
        (with_field("paymentAmount", 1e300), "above the limit of 1e+15"),
        (with_field("paymentAmount", 10**400), "above the limit of 1e+15"),
        (with_field("paymentAmount", "1e999"), "field 'paymentAmount' is not finite"),
        (with_field("paymentAmount", "12,5"), "must be a number or decimal string, got string"),
        (with_field("paymentAmount", [1]), "must be a number or decimal string, got array"),
        (with_field("paymentAmount", 1.0).replace(b"1.0", b"NaN"), "NaN is not valid JSON"),
        (
            with_field("paymentAmount", 1.0).replace(b"1.0", b"-Infinity"),
            "-Infinity is not valid JSON",
        ),
        (
            with_field("paymentAmount", 1.0).replace(b"1.0", b"1e400"),
            "field 'paymentAmount' is not finite",
        ),
        (with_field("eventTime", 99), "field 'eventTime' is 99, outside the years 2000 to 2100"),
        (with_field("eventTime", 10**17), "outside the years 2000 to 2100"),
        (with_field("eventTime", 1.7e12), "field 'eventTime' must be integer epoch milliseconds"),
        (with_field("ingestionTimestamp", -5), "field 'ingestionTimestamp' is -5"),
        (with_field("paymentType", "XYZ"), "field 'paymentType' must be 'CSH' or 'CRD', got 'XYZ'"),
        (with_field("paymentType", 1), "field 'paymentType' must be 'CSH' or 'CRD', got 1"),
        (with_field("paymentType", [1]), "field 'paymentType' must be 'CSH' or 'CRD', got [1]"),
        (with_field("paymentType", {"a": 1}), "field 'paymentType' must be 'CSH' or 'CRD'"),
        (b"[" * 50_000 + b"]" * 50_000, "bytes, over the limit of 65536"),
        (b"[" * 30_000 + b"]" * 30_000, "not valid JSON"),
        (with_field("pad", "x" * 70_000), "over the limit of 65536"),
    ],
)
def test_bad_records_are_refused_with_a_precise_reason(raw: bytes, reason: str) -> None:
    assert reason in reason_of(raw)


def test_size_limit_is_configurable() -> None:
    raw = json.dumps(GOOD).encode()
    with pytest.raises(InvalidRecordError, match="over the limit of 10"):
        decode_transaction_json(raw, max_bytes=10)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_fail_with_a_reason(raw: bytes) -> None:
    try:
        tx = decode_transaction_json(raw)
    except InvalidRecordError as exc:
        assert exc.reason
        return
    assert isinstance(tx, Transaction)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_json_value_decodes_or_fails_with_a_reason(value: Any) -> None:
    try:
        raw = json.dumps(value).encode()
    except ValueError:
        return
    try:
        decode_transaction_json(raw)
    except InvalidRecordError as exc:
        assert exc.reason


def test_decode_json_object() -> None:
    assert decode_json_object(b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidRecordError, match="not a JSON object"):
        decode_json_object(b'"text"')


def test_csv_with_a_reordered_header() -> None:
    columns = CsvColumns.from_header_line(
        b"paymentType,paymentAmount,transactionId,eventTime,payeeId,beneficiaryId,ingestionTimestamp,extra"
    )
    tx = decode_transaction_csv(b'CRD,"7.25",5,1700000000000,6,7,1700000000000,whatever', columns)
    assert tx == Transaction(5, 1_700_000_000_000, 6, 7, 7.25, "CRD", 1_700_000_000_000)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"1,2,3", "CSV row has 3 columns, expected 7"),
        (b"", "not valid CSV: empty line"),
        (b'1,"unclosed', "not valid CSV"),
        (
            b"x,1700000000000,2,3,1.0,CSH,1700000000000",
            "field 'transactionId' must be an integer id",
        ),
        (b"1,1700000000000,2,3,-1.0,CSH,1700000000000", "field 'paymentAmount' is negative"),
        (b"1,1700000000000,2,3,nan,CSH,1700000000000", "must be a number or decimal string"),
        (b"1,1700000000000,2,3,1.0,XXX,1700000000000", "field 'paymentType'"),
        (b"1,17,2,3,1.0,CSH,1700000000000", "field 'eventTime' is 17"),
        (b"1,1700000000000,2,3,\xff,CSH,1700000000000", "invalid UTF-8 at byte 20"),
        (b"1,\x00,2", "NUL character"),
    ],
)
def test_bad_csv_rows(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecordError) as info:
        decode_transaction_csv(raw)
    assert reason in info.value.reason


def test_csv_header_without_a_needed_column() -> None:
    with pytest.raises(InvalidRecordError, match="lacks column"):
        CsvColumns.from_header_line(b"transactionId,eventTime")
    assert CSV_HEADER.startswith(b"transactionId,eventTime,payeeId")


def test_to_json_bytes_of_every_kind_of_record() -> None:
    assert json.loads(to_json_bytes(Alert(7, 1000, 600.0))) == {
        "accountId": 7,
        "accountIdStr": "7",
        "timestamp": 1000,
        "amount": 600.0,
    }
    assert to_json_bytes({"a": [1, 2]}) == b'{"a":[1,2]}'
    assert to_json_bytes((1, "x")) == b'[1,"x"]'
    letter = DeadLetter(b"\xffraw", "bad", "src", "offset 3")
    assert json.loads(to_json_bytes(letter))["raw"] == "\ufffdraw"
    assert json.loads(to_json_bytes({"nested": Alert(1)}))["nested"]["accountId"] == 1
    with pytest.raises(ValueError, match="cannot write"):
        to_json_bytes({"x": math.nan})
    with pytest.raises(ValueError, match="cannot write"):
        to_json_bytes({"x": object()})
