"""``kafka://HOST:PORT/TOPIC?options`` as the command line writes it, per record role."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from fraudstream.connectors import codecs
from fraudstream.connectors.kafka._admin import DEFAULT_QUIET_MS, create_topic
from fraudstream.connectors.kafka._sink import KafkaSink
from fraudstream.connectors.kafka._source import DEFAULT_MAX_BYTES, KafkaSource
from fraudstream.exceptions import ConfigurationError, InvalidRecordError

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


def _deserializer(role: str, max_bytes: int) -> Callable[[bytes], Any]:
    if role == "transactions":
        return functools.partial(codecs.decode_transaction_json, max_bytes=max_bytes)
    if role == "rules":
        return _decode_rule
    if role in ("alerts", "json"):
        return _json_decoder
    raise ConfigurationError(
        f"a Kafka source cannot read {role!r}; expected transactions, rules or alerts"
    )


def _json_decoder(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None


def _decode_rule(raw: bytes) -> Any:
    """A rule (JSON); a refused rule is an invalid record with its field errors."""
    from fraudstream.exceptions import RuleValidationError
    from fraudstream.fraud.rules import parse_rule

    try:
        return parse_rule(raw)
    except RuleValidationError as exc:
        raise InvalidRecordError(str(exc)) from None


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
    max_bytes = spec.int_option("max-bytes", DEFAULT_MAX_BYTES, minimum=1)
    assert max_bytes is not None
    return KafkaSource(
        bootstrap,
        topic,
        _deserializer(role, max_bytes),
        group_id=spec.option("group"),
        start=start,
        max_bytes=max_bytes,
        bounded=_bool_option(spec, "bounded"),
        quiet_ms=spec.int_option("quiet-ms", DEFAULT_QUIET_MS, minimum=0),
    )


def sink_from_spec(spec: Any, role: str) -> KafkaSink[Any]:
    """``kafka://HOST:PORT/TOPIC?partitions=N,delivery=at-least-once,transactional-id=ID``.

    ``partitions=N`` creates the topic when it does not exist yet.
    """
    _check_options(spec, _SINK_OPTIONS)
    bootstrap, topic = _bootstrap_and_topic(spec)
    _ensure_topic(spec, bootstrap, topic)
    serializer: Callable[[Any], bytes]
    if role == "transactions":
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
