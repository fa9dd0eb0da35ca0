"""Reading and writing transactions and records as JSON lines and CSV.

Every source decodes through these functions, so every source refuses the same records
for the same reasons. A record is refused with :class:`InvalidRecordError` whose reason
names the field and the value; the source then routes it to the dead letters.

Validation of a transaction (the demo's wire fields, DESIGN.md §2):

- the record is at most ``max_bytes`` long, valid UTF-8 and one JSON object (strict
  JSON: ``NaN`` and ``Infinity`` are refused);
- ``transactionId``, ``payeeId``, ``beneficiaryId`` are integers (or strings of decimal
  digits, as JavaScript producers send 64-bit ids) from 0 to 2**63-1;
- ``eventTime`` and ``ingestionTimestamp`` are integer epoch milliseconds within the
  years 2000 to 2100 (``ingestionTimestamp`` may also be 0: not stamped yet);
- ``paymentAmount`` is a finite number (or decimal string) from 0 to 10**15;
- ``paymentType`` is ``CSH`` or ``CRD``.

Fields other than these are ignored. The common case (a well-formed record) runs
``json.loads`` and one combined check; the precise reason is worked out only for
records that fail it.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fraudstream.exceptions import InvalidRecordError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction

__all__ = [
    "CSV_HEADER",
    "DEFAULT_MAX_RECORD_BYTES",
    "MAX_AMOUNT",
    "MAX_EVENT_TIME_MS",
    "MAX_ID",
    "MIN_EVENT_TIME_MS",
    "CsvColumns",
    "decode_json_object",
    "decode_transaction_csv",
    "decode_transaction_json",
    "encode_transaction_csv",
    "encode_transaction_json",
    "to_json_bytes",
    "transaction_from_mapping",
    "transaction_to_json_dict",
]

#: Largest id: ids are signed 64-bit integers on the JVM side of the demo.
MAX_ID = 2**63 - 1
#: 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in epoch milliseconds.
MIN_EVENT_TIME_MS = 946_684_800_000
MAX_EVENT_TIME_MS = 4_102_444_800_000
#: Largest payment amount accepted (a quadrillion): anything above is a corrupted record.
MAX_AMOUNT = 1e15
#: Records longer than this are refused before parsing.
DEFAULT_MAX_RECORD_BYTES = 64 * 1024
#: The wire names in tuple order.
_NAMES: tuple[str, ...] = tuple(sorted(TRANSACTION_FIELDS, key=TRANSACTION_FIELDS.__getitem__))
#: The CSV header line of :func:`encode_transaction_csv`.
CSV_HEADER = (",".join(_NAMES) + "\n").encode()
_ID_FIELDS = ("transactionId", "payeeId", "beneficiaryId")
_TIME_FIELDS = ("eventTime", "ingestionTimestamp")
_DIGITS = re.compile(r"\d{1,19}\Z")
_DECIMAL = re.compile(r"-?\d{1,20}(\.\d{1,20})?([eE][+-]?\d{1,3})?\Z")
_PAYMENT_TYPES = frozenset(("CSH", "CRD"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_decode_json = _DECODER.decode
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_new_tuple = tuple.__new__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decode_json_object(
    raw: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES, what: str = "record"
) -> dict[str, Any]:
    """One JSON object from UTF-8 bytes, or :class:`InvalidRecordError` saying why not."""
    if len(raw) > max_bytes:
        raise InvalidRecordError(f"{what} is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        obj = _decode_json(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(f"invalid UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise InvalidRecordError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise InvalidRecordError(f"not valid JSON: {exc}") from None
    if type(obj) is not dict:
        raise InvalidRecordError(f"not a JSON object (got a JSON {_json_type(obj)})")
    return obj


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def decode_transaction_json(raw: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Transaction:
    """A transaction from one JSON line (without its line ending).

    Raises:
        InvalidRecordError: the record does not parse or validate; ``reason`` says why.
    """
    # Fast path: the C scanner on the whole line; anything unusual (leading blanks, errors,
    # trailing data, not an object) is left to decode_json_object for its precise reason.
    obj: Any = None
    if len(raw) <= max_bytes:
        try:
            text = raw.decode("utf-8")
            obj, end = _scan_once(text, 0)
            if end != len(text) and not text[end:].isspace():
                obj = None
        except Exception:  # StopIteration, UnicodeDecodeError, ValueError, RecursionError
            obj = None
    if type(obj) is not dict:
        obj = decode_json_object(raw, max_bytes, "record")
    get = obj.get
    tid = get("transactionId")
    event_time = get("eventTime")
    payee = get("payeeId")
    beneficiary = get("beneficiaryId")
    amount = get("paymentAmount")
    payment_type = get("paymentType")
    ingestion = get("ingestionTimestamp")
    # One combined check for the common case; ``type(x) is int`` refuses bools too.
    if (
        type(tid) is int
        and type(payee) is int
        and type(beneficiary) is int
        and type(event_time) is int
        and type(ingestion) is int
        and (type(amount) is float or type(amount) is int)
        and 0 <= tid <= MAX_ID
        and 0 <= payee <= MAX_ID
        and 0 <= beneficiary <= MAX_ID
        and MIN_EVENT_TIME_MS <= event_time < MAX_EVENT_TIME_MS
        and (MIN_EVENT_TIME_MS <= ingestion < MAX_EVENT_TIME_MS or ingestion == 0)
        and 0 <= amount <= MAX_AMOUNT
        and (payment_type == "CSH" or payment_type == "CRD")  # noqa: PLR1714 - may be unhashable
    ):
        return _new_tuple(
            Transaction,
            (tid, event_time, payee, beneficiary, float(amount), payment_type, ingestion),
        )
    return transaction_from_mapping(obj)


def _id_value(name: str, value: Any) -> int:
    if type(value) is int:
        number = value
    elif type(value) is str and _DIGITS.match(value):
        number = int(value)
    else:
        raise InvalidRecordError(
            f"field {name!r} must be an integer id, got {_json_type(value)} {_short(value)}"
        )
    if not 0 <= number <= MAX_ID:
        raise InvalidRecordError(f"field {name!r} is {number}; ids must be from 0 to 2**63-1")
    return number


def _time_value(name: str, value: Any) -> int:
    if type(value) is not int:
        if type(value) is str and _DIGITS.match(value):
            value = int(value)
        else:
            raise InvalidRecordError(
                f"field {name!r} must be integer epoch milliseconds, "
                f"got {_json_type(value)} {_short(value)}"
            )
    if not MIN_EVENT_TIME_MS <= value < MAX_EVENT_TIME_MS:
        if name == "ingestionTimestamp" and value == 0:
            return 0  # not stamped yet: the producer left it to the pipeline
        raise InvalidRecordError(
            f"field {name!r} is {value}, outside the years 2000 to 2100 in epoch milliseconds"
        )
    return int(value)


def _amount_value(value: Any) -> float:
    if type(value) is int:
        if value > MAX_AMOUNT:
            raise InvalidRecordError(
                f"field 'paymentAmount' is {_short(value)}, above the limit of {MAX_AMOUNT:.0e}"
            )
        amount = float(value)
    elif type(value) is float:
        amount = value
    elif type(value) is str and _DECIMAL.match(value):
        amount = float(value)
    else:
        raise InvalidRecordError(
            f"field 'paymentAmount' must be a number or decimal string, "
            f"got {_json_type(value)} {_short(value)}"
        )
    if not math.isfinite(amount):
        raise InvalidRecordError(f"field 'paymentAmount' is not finite ({_short(value)})")
    if amount < 0:
        raise InvalidRecordError(f"field 'paymentAmount' is negative ({_short(value)})")
    if amount > MAX_AMOUNT:
        raise InvalidRecordError(
            f"field 'paymentAmount' is {_short(value)}, above the limit of {MAX_AMOUNT:.0e}"
        )
    return amount


def transaction_from_mapping(obj: Mapping[str, Any]) -> Transaction:
    """Validate a mapping of wire names (JSON object, CSV row) into a transaction.

    Raises:
        InvalidRecordError: the first missing or bad field, named.
    """
    missing = [name for name in _NAMES if name not in obj]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise InvalidRecordError(f"missing field{'s' if len(missing) > 1 else ''} {listed}")
    payment_type = obj["paymentType"]
    if type(payment_type) is not str or payment_type not in _PAYMENT_TYPES:
        raise InvalidRecordError(
            f"field 'paymentType' must be 'CSH' or 'CRD', got {_short(payment_type)}"
        )
    return Transaction(
        _id_value("transactionId", obj["transactionId"]),
        _time_value("eventTime", obj["eventTime"]),
        _id_value("payeeId", obj["payeeId"]),
        _id_value("beneficiaryId", obj["beneficiaryId"]),
        _amount_value(obj["paymentAmount"]),
        payment_type,
        _time_value("ingestionTimestamp", obj["ingestionTimestamp"]),
    )


class CsvColumns:
    """Where each transaction field sits in a CSV row, read from a header line.

    Without a header, the columns are in the order of :data:`CSV_HEADER`.
    """

    __slots__ = ("indexes", "width")

    def __init__(self, header: Sequence[str] | None = None) -> None:
        names = list(_NAMES) if header is None else [h.strip() for h in header]
        positions = {name: index for index, name in enumerate(names)}
        missing = [name for name in _NAMES if name not in positions]
        if missing:
            raise InvalidRecordError(
                f"CSV header lacks column(s) {', '.join(repr(m) for m in missing)}"
            )
        self.indexes = tuple(positions[name] for name in _NAMES)
        self.width = len(names)

    @classmethod
    def from_header_line(cls, raw: bytes) -> CsvColumns:
        """Columns from the raw header line of a CSV file."""
        return cls(_csv_cells(raw, DEFAULT_MAX_RECORD_BYTES))


def _csv_cells(raw: bytes, max_bytes: int) -> list[str]:
    if len(raw) > max_bytes:
        raise InvalidRecordError(f"record is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(f"invalid UTF-8 at byte {exc.start}") from None
    if not text.strip():
        raise InvalidRecordError("not valid CSV: empty line")
    if "\x00" in text:
        raise InvalidRecordError("not valid CSV: NUL character")
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise InvalidRecordError(f"not valid CSV: {exc}") from None
    if len(rows) != 1:
        raise InvalidRecordError("not valid CSV: a line break inside a row")
    return rows[0]


_DEFAULT_COLUMNS = CsvColumns()


def decode_transaction_csv(
    raw: bytes, columns: CsvColumns | None = None, max_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Transaction:
    """A transaction from one CSV line (without its line ending).

    Args:
        raw: the line's bytes.
        columns: where the fields are (from the file's header); default: ``CSV_HEADER`` order.
        max_bytes: longest line accepted.

    Raises:
        InvalidRecordError: the line does not parse or validate; ``reason`` says why.
    """
    cols = _DEFAULT_COLUMNS if columns is None else columns
    cells = _csv_cells(raw, max_bytes)
    if len(cells) != cols.width:
        raise InvalidRecordError(f"CSV row has {len(cells)} columns, expected {cols.width}")
    values = {name: cells[index].strip() for name, index in zip(_NAMES, cols.indexes)}
    return transaction_from_mapping(values)


def transaction_to_json_dict(tx: Transaction) -> dict[str, Any]:
    """The transaction with its wire (camelCase) names; ids also as exact strings."""
    return {
        "transactionId": tx[0],
        "eventTime": tx[1],
        "payeeId": tx[2],
        "beneficiaryId": tx[3],
        "paymentAmount": tx[4],
        "paymentType": tx[5],
        "ingestionTimestamp": tx[6],
    }


def encode_transaction_json(tx: Transaction) -> bytes:
    """One JSON line (no newline) with the demo's field names."""
    amount = tx[4]
    if (
        type(amount) is float
        and math.isfinite(amount)
        and tx[5] in ("CSH", "CRD")
        and type(tx[0]) is int
        and type(tx[1]) is int
        and type(tx[2]) is int
        and type(tx[3]) is int
        and type(tx[6]) is int
    ):
        return (
            f'{{"transactionId":{tx[0]},"eventTime":{tx[1]},"payeeId":{tx[2]},'
            f'"beneficiaryId":{tx[3]},"paymentAmount":{amount!r},"paymentType":"{tx[5]}",'
            f'"ingestionTimestamp":{tx[6]}}}'
        ).encode()
    return json.dumps(transaction_to_json_dict(tx), separators=(",", ":"), allow_nan=False).encode()


def encode_transaction_csv(tx: Transaction) -> bytes:
    """One CSV line (no newline) in the column order of :data:`CSV_HEADER`."""
    return ",".join(_csv_cell(v) for v in tx).encode()


def _csv_cell(value: Any) -> str:
    text = repr(value) if type(value) is float else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_ready(record: Any) -> Any:
    to_dict = getattr(record, "to_json_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(record, Transaction):
        return transaction_to_json_dict(record)
    if isinstance(record, bytes):
        return record.decode("utf-8", errors="replace")
    return record


def to_json_bytes(record: Any) -> bytes:
    """One JSON line (no newline) for any record a sink writes.

    Records with ``to_json_dict()`` (alerts, rules, dead letters) use it; transactions use
    their wire names; dicts, lists, tuples and scalars are written as JSON.

    Raises:
        ValueError: the record holds something JSON cannot represent (NaN, an object).
    """
    if isinstance(record, Transaction):
        return encode_transaction_json(record)
    try:
        return json.dumps(
            _json_ready(record), separators=(",", ":"), allow_nan=False, default=_json_default
        ).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot write {_short(record)} as JSON: {exc}") from exc


def _json_default(value: Any) -> Any:
    ready = _json_ready(value)
    if ready is value:
        if isinstance(value, (set, frozenset)):
            return sorted(value, key=repr)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return ready
