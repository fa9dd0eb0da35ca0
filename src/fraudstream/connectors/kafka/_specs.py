"""``kafka://HOST:PORT/TOPIC?options`` as the command line writes it, per record role."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from fraudstream.connectors.base import DeadLetter
from fraudstream.connectors.kafka._admin import DEFAULT_QUIET_MS, create_topic
from fraudstream.connectors.kafka._sink import KafkaSink
from fraudstream.connectors.kafka._source import DEFAULT_MAX_BYTES, KafkaSource
from fraudstream.exceptions import ConfigurationError, InvalidRecordError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction

__all__ = ["sink_from_spec", "source_from_spec"]

_SOURCE_OPTIONS = ("group", "bounded", "start", "max-bytes", "quiet-ms", "partitions")
_SINK_OPTIONS = ("partitions", "delivery", "transactional-id")


def _bootstrap_and_topic(spec: Any) -> tuple[str, str]:
    bootstrap, _, topic = spec.target.rpartition("/")
    if not bootstrap or not topic or ":" not in bootstrap:
        raise ConfigurationError(f"{spec.text!r}: expected kafka://HOST:PORT/TOPIC")
    return bootstrap, topic


def _check_options(spec: Any, known: tuple[str, ...]) -> None:
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        raise ConfigurationError(
            f"{spec.text!r}: unknown option(s) {', '.join(unknown)} (known: {', '.join(known)})"
        )


def _bool_option(spec: Any, name: str) -> bool:
    raw = spec.option(name, "false").lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{spec.text!r}: option {name}={raw!r} must be true or false")


def _ensure_topic(spec: Any, bootstrap: str, topic: str) -> None:
    partitions = spec.int_option("partitions", None, minimum=1)
    if partitions is not None:
        create_topic(bootstrap, topic, partitions)


def _deserializer(role: str) -> Callable[[bytes], Any]:
    if role == "transactions":
        return _codecs().decode_transaction_json  # type: ignore[no-any-return]
    if role == "rules":
        import importlib

        return _rule_decoder(importlib.import_module("fraudstream.fraud.rules").parse_rule)
    if role in ("alerts", "json"):
        return _json_decoder
    raise ConfigurationError(
        f"a Kafka source cannot read {role!r}; expected transactions, rules or alerts"
    )


def _codecs() -> Any:
    """The shared JSON codecs (``fraudstream.connectors.codecs``)."""
    import importlib

    try:
        return importlib.import_module("fraudstream.connectors.codecs")
    except ModuleNotFoundError:  # TODO(kafka): drop once codecs lands on main
        return _InterimCodecs


class _InterimCodecs:
    """Transaction and alert JSON until ``fraudstream.connectors.codecs`` exists."""

    @staticmethod
    def decode_transaction_json(raw: bytes) -> Any:
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidRecordError(f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise InvalidRecordError("a transaction must be a JSON object")
        values: list[Any] = []
        for name in TRANSACTION_FIELDS:
            value = obj.get(name)
            if name == "paymentType":
                if value not in ("CSH", "CRD"):
                    raise InvalidRecordError(f"paymentType {value!r} is not CSH or CRD")
            elif name == "paymentAmount":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InvalidRecordError(f"paymentAmount {value!r} is not a number")
                if not math.isfinite(value) or value < 0:
                    raise InvalidRecordError(f"paymentAmount {value!r} is not a finite amount")
                value = float(value)
            elif isinstance(value, bool) or not isinstance(value, int):
                raise InvalidRecordError(f"{name} {value!r} is missing or not an integer")
            values.append(value)
        return Transaction(*values)

    @staticmethod
    def encode_transaction_json(tx: Any) -> bytes:
        return json.dumps(dict(zip(TRANSACTION_FIELDS, tx)), separators=(",", ":")).encode()

    @staticmethod
    def to_json_bytes(record: Any) -> bytes:
        if hasattr(record, "to_json_dict"):
            record = record.to_json_dict()
        return json.dumps(record, separators=(",", ":")).encode()


def _json_decoder(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None


def _rule_decoder(parse_rule: Callable[[Any], Any]) -> Callable[[bytes], Any]:
    from fraudstream.exceptions import RuleValidationError

    def decode(raw: bytes) -> Any:
        try:
            return parse_rule(raw)
        except RuleValidationError as exc:
            raise InvalidRecordError(str(exc)) from None

    return decode


def _record_key(record: Any) -> bytes | str | int | None:
    """Partitioning key of an outgoing record: rule alerts by key, tutorial alerts by account."""
    for name in ("key", "account_id", "payee_id"):
        value = getattr(record, name, None)
        if value is not None and not callable(value):
            return value  # type: ignore[no-any-return]
    return None


def source_from_spec(spec: Any, role: str) -> KafkaSource[Any]:
    """``kafka://HOST:PORT/TOPIC?group=G,bounded=true,start=committed,max-bytes=N``."""
    _check_options(spec, _SOURCE_OPTIONS)
    bootstrap, topic = _bootstrap_and_topic(spec)
    _ensure_topic(spec, bootstrap, topic)
    start = spec.option("start", "earliest")
    return KafkaSource(
        bootstrap,
        topic,
        _deserializer(role),
        group_id=spec.option("group"),
        start=start,
        max_bytes=spec.int_option("max-bytes", DEFAULT_MAX_BYTES, minimum=1),
        bounded=_bool_option(spec, "bounded"),
        quiet_ms=spec.int_option("quiet-ms", DEFAULT_QUIET_MS, minimum=0),
    )


def sink_from_spec(spec: Any, role: str) -> KafkaSink[Any]:
    """``kafka://HOST:PORT/TOPIC?partitions=N,delivery=at-least-once,transactional-id=ID``.

    ``partitions=N`` creates the topic when it does not exist yet.
    """
    codecs = _codecs()
    _check_options(spec, _SINK_OPTIONS)
    bootstrap, topic = _bootstrap_and_topic(spec)
    _ensure_topic(spec, bootstrap, topic)
    serializer: Callable[[Any], bytes]
    if role == "dead-letters":
        serializer = _dead_letter_bytes
    elif role == "transactions":
        serializer = codecs.encode_transaction_json
    else:
        serializer = codecs.to_json_bytes
    return KafkaSink(
        bootstrap,
        topic,
        serializer,
        _record_key,
        transactional_id_prefix=spec.option("transactional-id") or f"fraudstream.{role}.{topic}",
        delivery=spec.option("delivery", "exactly-once"),
    )


def _dead_letter_bytes(record: DeadLetter) -> bytes:
    return json.dumps(record.to_json_dict(), separators=(",", ":")).encode()
