"""``kafka://HOST:PORT/TOPIC?options`` specs, and hostile records mixed into good ones."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.connectors.base import DeadLetter, ReaderContext, WriterContext
from fraudstream.connectors.kafka import (
    KafkaSink,
    KafkaSource,
    create_topic,
    partition_count,
    read_topic,
)
from fraudstream.connectors.specs import make_sink, make_source
from fraudstream.exceptions import ConfigurationError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction
from kafka_broker import KafkaBroker

Topic = Callable[[str], str]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kafka://", "expected kafka://HOST:PORT/TOPIC"),
        ("kafka://127.0.0.1:9/", "expected kafka://HOST:PORT/TOPIC"),
        ("kafka://transactions", "expected kafka://HOST:PORT/TOPIC"),
        ("kafka://127.0.0.1:9/t?colour=red", "unknown option"),
        ("kafka://127.0.0.1:9/t?bounded=maybe", "must be true or false"),
        ("kafka://127.0.0.1:9/t?max-bytes=lots", "not an integer"),
        ("kafka://127.0.0.1:9/t?start=latest", "start must be"),
        ("kafka://127.0.0.1:9/t?partitions=0", "partitions must be >= 1"),
    ],
)
def test_bad_source_specs_are_refused_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_source(spec, "transactions")


@pytest.mark.parametrize(
    ("spec", "role", "message"),
    [
        ("kafka://127.0.0.1:9/a?delivery=sometimes", "alerts", "delivery must be"),
        ("kafka://127.0.0.1:9/a?group=g", "alerts", "unknown option"),
    ],
)
def test_bad_sink_specs_are_refused_with_the_reason(spec: str, role: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_sink(spec, role)


def test_a_source_role_without_a_decoder_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot read 'latency'"):
        make_source("kafka://127.0.0.1:9/t", "latency")


def test_source_spec_options_reach_the_source() -> None:
    source = make_source(
        "kafka://127.0.0.1:9/tx?group=g1&bounded=true&start=committed&max-bytes=2048&quiet-ms=50",
        "transactions",
    )
    assert isinstance(source, KafkaSource)
    assert (source.bootstrap_servers, source.topic, source.group_id) == ("127.0.0.1:9", "tx", "g1")
    assert (source.bounded, source.start, source.max_bytes, source.quiet_ms) == (
        True,
        "committed",
        2048,
        50,
    )


def test_sink_spec_options_reach_the_sink() -> None:
    sink = make_sink("kafka://127.0.0.1:9/alerts?delivery=at-least-once", "alerts")
    assert isinstance(sink, KafkaSink)
    assert (sink.topic, sink.delivery) == ("alerts", "at-least-once")
    assert sink.transactional_id_prefix == "fraudstream.alerts.alerts"


@pytest.mark.kafka
def test_partitions_option_creates_the_topic(kafka_broker: KafkaBroker, kafka_topic: Topic) -> None:
    topic = kafka_topic("made")
    make_sink(f"kafka://{kafka_broker.bootstrap}/{topic}?partitions=3", "alerts")
    assert partition_count(kafka_broker.bootstrap, topic) == 3


@pytest.mark.kafka
def test_dead_letters_sink_writes_reason_position_and_raw(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("dlq")
    sink = make_sink(f"kafka://{kafka_broker.bootstrap}/{topic}?partitions=1", "dead-letters")
    writer = sink.create_writer(0, 1)
    writer.open(WriterContext(0, 1, exactly_once=False))
    writer.write([DeadLetter(b"\xffbad", "invalid UTF-8", "kafka:tx", "2:17")])
    writer.flush()
    writer.close()
    (record,) = read_topic(kafka_broker.bootstrap, topic, expected=1)
    assert json.loads(record.value or b"") == {
        "source": "kafka:tx",
        "position": "2:17",
        "reason": "invalid UTF-8",
        "raw": "\ufffdbad",
    }


# -- hostile records mixed into good ones ----------------------------------------------------
def tx_bytes(tx: Transaction) -> bytes:
    return json.dumps(dict(zip(TRANSACTION_FIELDS, tx))).encode()


EPOCH_2017, EPOCH_2030 = 1_483_228_800_000, 1_893_456_000_000
GOOD = st.builds(
    Transaction,
    st.integers(0, 2**63 - 1),
    st.integers(EPOCH_2017, EPOCH_2030),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.floats(0.01, 1e9, allow_nan=False),
    st.sampled_from(["CSH", "CRD"]),
    st.integers(EPOCH_2017, EPOCH_2030),
)


def _with(tx: Transaction, **changes: Any) -> bytes:
    obj: dict[str, Any] = dict(zip(TRANSACTION_FIELDS, tx))
    for name, value in changes.items():
        if value is _DROP:
            del obj[name]
        else:
            obj[name] = value
    return json.dumps(obj).encode()


_DROP = object()
MAX_BYTES = 2048

HOSTILE = st.one_of(
    st.binary(max_size=40).filter(lambda b: not b.strip().startswith((b"{", b"["))),
    st.just(b"\xff\xfe{}"),
    GOOD.map(lambda t: _with(t, payeeId=_DROP)),
    GOOD.map(lambda t: _with(t, eventTime="yesterday")),
    GOOD.map(lambda t: _with(t, paymentAmount=-1.5)),
    GOOD.map(lambda t: tx_bytes(t).replace(b'"paymentAmount": ', b'"paymentAmount": NaN, "x": ')),
    GOOD.map(lambda t: _with(t, paymentType="BTC")),
    GOOD.map(lambda t: _with(t, transactionId=True)),
    GOOD.map(lambda t: tx_bytes(t) + b" " * MAX_BYTES),
    st.just(b"[1, 2]"),
)


@pytest.mark.kafka
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.booleans(), GOOD, HOSTILE), min_size=1, max_size=25))
def test_every_good_record_is_read_and_every_bad_one_is_a_dead_letter(
    kafka_broker: KafkaBroker,
    kafka_topic: Topic,
    kafka_producer: Any,
    records: list[tuple[bool, Transaction, bytes]],
) -> None:
    topic = kafka_topic("mixed")
    create_topic(kafka_broker.bootstrap, topic, 1)
    payloads = [tx_bytes(tx) if good else bad for good, tx, bad in records]
    for payload in payloads:
        kafka_producer.produce(topic, value=payload, partition=0)
    assert kafka_producer.flush(30) == 0

    source = make_source(
        f"kafka://{kafka_broker.bootstrap}/{topic}?bounded=true,quiet-ms=100,max-bytes={MAX_BYTES}",
        "transactions",
    )
    dead: list[DeadLetter] = []
    reader = source.create_reader(0, 1)
    reader.open(ReaderContext(dead_letter=dead.append))
    got: list[Transaction] = []
    deadline = time.monotonic() + 20
    try:
        while (batch := reader.poll(100)) is not None:
            got.extend(batch)
            assert time.monotonic() < deadline, "reader did not end"
    finally:
        reader.close()
    assert got == [tx for good, tx, _ in records if good]
    bad_offsets = [f"0:{i}" for i, (good, _, _) in enumerate(records) if not good]
    assert [d.position for d in dead] == bad_offsets
    for letter in dead:
        offset = int(letter.position.split(":")[1])
        assert letter.reason
        assert letter.raw == payloads[offset][:MAX_BYTES]


@pytest.mark.kafka
def test_a_job_routes_every_dead_letter_of_every_poll(
    kafka_broker: KafkaBroker, kafka_topic: Topic, kafka_producer: Any
) -> None:
    from fraudstream.common import WatermarkStrategy
    from fraudstream.connectors.deadletters import route_dead_letters
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.testing import CapturingSink

    topic = kafka_topic("job-dlq")
    create_topic(kafka_broker.bootstrap, topic, 2)
    good = [Transaction(i, EPOCH_2017 + i, i % 5, 9, 10.0, "CSH", EPOCH_2017) for i in range(300)]
    for i, tx in enumerate(good):
        kafka_producer.produce(topic, value=tx_bytes(tx), partition=i % 2)
        if i % 10 == 0:  # bad records spread over many polls
            kafka_producer.produce(topic, value=b"bad %d" % i, partition=i % 2)
    assert kafka_producer.flush(30) == 0

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2).set_batch_size(16)
    source = make_source(
        f"kafka://{kafka_broker.bootstrap}/{topic}?bounded=true,quiet-ms=200", "transactions"
    )
    records, dead = CapturingSink(), CapturingSink()
    env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").sink_to(records)
    route_dead_letters(env, dead)
    env.execute("dead letters")
    assert sorted(records.results) == good
    assert sorted(d.raw for d in dead.results) == sorted(b"bad %d" % i for i in range(0, 300, 10))


@pytest.mark.kafka
def test_rules_topic_yields_rules_and_refused_rules_become_dead_letters(
    kafka_broker: KafkaBroker, kafka_topic: Topic, kafka_producer: Any
) -> None:
    import pickle

    from fraudstream.fraud.rules import Rule

    topic = kafka_topic("rules")
    create_topic(kafka_broker.bootstrap, topic, 1)
    good = {
        "ruleId": 1,
        "ruleState": "ACTIVE",
        "groupingKeyNames": ["payeeId"],
        "aggregateFieldName": "paymentAmount",
        "aggregatorFunctionType": "SUM",
        "limitOperatorType": "GREATER",
        "limit": 100,
        "windowMinutes": 60,
    }
    bad = dict(good, aggregatorFunctionType="MEDIAN")
    for rule in (good, bad):
        kafka_producer.produce(topic, value=json.dumps(rule).encode(), partition=0)
    assert kafka_producer.flush(30) == 0
    source = make_source(
        f"kafka://{kafka_broker.bootstrap}/{topic}?bounded=true,quiet-ms=100", "rules"
    )
    source = pickle.loads(pickle.dumps(source))  # sources travel to worker processes
    dead: list[DeadLetter] = []
    reader = source.create_reader(0, 1)
    reader.open(ReaderContext(dead_letter=dead.append))
    got: list[Any] = []
    try:
        while (batch := reader.poll(10)) is not None:
            got.extend(batch)
    finally:
        reader.close()
    assert [type(r) for r in got] == [Rule] and got[0].rule_id == 1
    assert [d.position for d in dead] == ["0:1"]
    assert "aggregatorFunctionType" in dead[0].reason
