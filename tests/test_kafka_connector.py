"""Kafka source and sink against the real Tansu broker (no mocks)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.base import DeadLetter, ReaderContext, WriterContext
from fraudstream.connectors.kafka import (
    KafkaCommittable,
    KafkaSink,
    KafkaSinkWriter,
    KafkaSource,
    create_topic,
    partition_count,
    read_topic,
)
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError, InvalidRecordError
from fraudstream.testing import CapturingSink
from kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka

Topic = Callable[[str], str]


def decode(raw: bytes) -> dict[str, Any]:
    """A small strict JSON deserializer: an object with an integer ``n``."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(f"invalid UTF-8 at byte {exc.start}") from None
    except ValueError as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("n"), int):
        raise InvalidRecordError("field 'n' is missing or not an integer")
    return value


def encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % partitions, timestamp=1_000 + i)
    assert producer.flush(30) == 0


def drain(reader: Any, limit_s: float = 20.0) -> list[Any]:
    """Poll a bounded reader until it ends (the reader itself decides when)."""
    import time

    out: list[Any] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        batch = reader.poll(500)
        if batch is None:
            return out
        out.extend(batch)
    raise AssertionError(f"reader did not end within {limit_s}s; read {len(out)}")


def test_topic_helpers(kafka_broker: KafkaBroker, kafka_topic: Topic) -> None:
    topic = kafka_topic("admin")
    assert partition_count(kafka_broker.bootstrap, topic) is None
    assert create_topic(kafka_broker.bootstrap, topic, 3) is True
    assert create_topic(kafka_broker.bootstrap, topic, 3) is False
    assert partition_count(kafka_broker.bootstrap, topic) == 3
    with pytest.raises(ConfigurationError, match="at least 1 partition"):
        create_topic(kafka_broker.bootstrap, topic, 0)


def test_round_trip_through_a_job_with_parallel_readers(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    source_topic, sink_topic = kafka_topic("in"), kafka_topic("out")
    create_topic(kafka_broker.bootstrap, source_topic, 4)
    create_topic(kafka_broker.bootstrap, sink_topic, 2)
    values = [{"n": i} for i in range(500)]
    produce(kafka_broker.bootstrap, source_topic, [encode(v) for v in values], 4)

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    source = KafkaSource(kafka_broker.bootstrap, source_topic, decode, bounded=True, quiet_ms=200)
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka-in")
    sink = KafkaSink(kafka_broker.bootstrap, sink_topic, encode, key_fn=lambda v: v["n"] % 7)
    stream.map(lambda v: {"n": v["n"] * 2}).sink_to(sink)
    env.execute("round trip")

    records = read_topic(kafka_broker.bootstrap, sink_topic, quiet_ms=300)
    assert sorted(json.loads(r.value or b"")["n"] for r in records) == [2 * i for i in range(500)]
    # records with the same key share a partition
    by_key: dict[bytes | None, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert len(by_key) == 7 and all(len(p) == 1 for p in by_key.values())


def test_partitions_are_spread_over_readers_and_stop_offsets_bound_them(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("spread")
    create_topic(kafka_broker.bootstrap, topic, 5)
    produce(kafka_broker.bootstrap, topic, [encode({"n": i}) for i in range(50)], 5)
    stop = dict.fromkeys(range(5), 6)  # each partition holds 10; read the first 6 of each
    source = KafkaSource(kafka_broker.bootstrap, topic, decode, stop_offsets=stop)
    seen: list[int] = []
    for subtask in range(2):
        reader = source.create_reader(subtask, 2)
        reader.open(ReaderContext(subtask, 2))
        try:
            got = drain(reader)
            assert reader.snapshot_position() == {p: 6 for p in range(5) if p % 2 == subtask}
        finally:
            reader.close()
        seen += [v["n"] for v in got]
    assert sorted(seen) == sorted(i for i in range(50) if i // 5 < 6)


def test_hostile_records_go_to_dead_letters_with_reason_and_position(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("hostile")
    create_topic(kafka_broker.bootstrap, topic, 1)
    hostile = [
        b"not json",
        b'{"n": "seven"}',
        b"\xff\xfe\x00garbage",
        b'{"m": 1}',
        b"[1, 2, 3]",
        b"x" * 5000,  # larger than max_bytes below
        b"",
    ]
    good = [encode({"n": i}) for i in range(len(hostile))]
    mixed = [v for pair in zip(good, hostile) for v in pair]
    produce(kafka_broker.bootstrap, topic, mixed, 1)

    dead: list[DeadLetter] = []
    source = KafkaSource(
        kafka_broker.bootstrap, topic, decode, bounded=True, quiet_ms=200, max_bytes=4096
    )
    reader = source.create_reader(0, 1)
    reader.open(ReaderContext(0, 1, dead_letter=dead.append))
    try:
        got = drain(reader)
    finally:
        reader.close()
    assert [v["n"] for v in got] == list(range(len(hostile)))
    assert [d.position for d in dead] == [f"0:{2 * i + 1}" for i in range(len(hostile))]
    assert [d.raw for d in dead[:5]] == hostile[:5]
    assert dead[5].raw == b"x" * 4096 and "5000 bytes exceeds the limit of 4096" in dead[5].reason
    reasons = [d.reason for d in dead]
    assert "not valid JSON" in reasons[0]
    assert "'n'" in reasons[1] and "'n'" in reasons[3] and "'n'" in reasons[4]
    assert "UTF-8" in reasons[2]
    assert "not valid JSON" in reasons[6]
    assert all(d.source == f"kafka:{topic}" for d in dead)


def test_restore_continues_after_the_snapshot_and_commits_offsets_to_the_group(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = kafka_topic("restore")
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, [encode({"n": i}) for i in range(40)], 2)
    source = KafkaSource(
        kafka_broker.bootstrap, topic, decode, bounded=True, quiet_ms=200, group_id=topic
    )
    first = source.create_reader(0, 1)
    first.open(ReaderContext())
    read: list[Any] = []
    try:
        import time

        deadline = time.monotonic() + 10
        while len(read) < 15 and time.monotonic() < deadline:
            read.extend(first.poll(15 - len(read)) or [])
        position = first.snapshot_position()
        first.notify_checkpoint_complete(1)
    finally:
        first.close()
    assert len(read) == 15 and sum(position.values()) == 15

    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": topic})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
    finally:
        consumer.close()
    assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == position

    second = source.create_reader(0, 1)
    second.open(ReaderContext())
    second.restore_position(position)
    try:
        rest = drain(second)
    finally:
        second.close()
    assert sorted(v["n"] for v in read + rest) == list(range(40))


def test_exactly_once_sink_commits_only_at_checkpoints_and_recommits_idempotently(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("eo")
    create_topic(kafka_broker.bootstrap, topic, 1)
    sink = KafkaSink(kafka_broker.bootstrap, topic, encode, transactional_id_prefix=topic)

    writer = sink.create_writer(0, 1)
    writer.open(WriterContext(0, 1, exactly_once=True))
    writer.write([{"n": 1}, {"n": 2}])
    first = writer.prepare_commit(1)
    writer.write([{"n": 3}])
    second = writer.prepare_commit(2)
    assert isinstance(first, KafkaCommittable) and isinstance(second, KafkaCommittable)
    writer.commit([first])
    writer.close()  # "crash": checkpoint 2 is complete but its commit never ran

    restarted = sink.create_writer(0, 1)
    restarted.open(WriterContext(0, 1, exactly_once=True))
    restarted.commit([first, second])  # the runtime re-commits the restored committables
    restarted.commit([first, second])  # and commits are idempotent
    restarted.close()

    records = read_topic(kafka_broker.bootstrap, topic, quiet_ms=300)
    assert [json.loads(r.value or b"")["n"] for r in records] == [1, 2, 3]


def test_sink_without_checkpoints_is_at_least_once(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("alo")
    create_topic(kafka_broker.bootstrap, topic, 3)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([{"n": i} for i in range(100)]).sink_to(
        KafkaSink(kafka_broker.bootstrap, topic, encode, key_fn=lambda v: str(v["n"]))
    )
    env.execute("at least once")
    records = read_topic(kafka_broker.bootstrap, topic, expected=100)
    assert sorted(json.loads(r.value or b"")["n"] for r in records) == list(range(100))


def test_missing_topic_and_bad_arguments_fail_clearly(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    source = KafkaSource(kafka_broker.bootstrap, kafka_topic("absent"), decode, bounded=True)
    reader = source.create_reader(0, 1)
    with pytest.raises(ConfigurationError, match="does not exist"):
        reader.open(ReaderContext())
    with pytest.raises(ConfigurationError, match="bootstrap"):
        KafkaSource("", "t", decode)
    with pytest.raises(ConfigurationError, match="start"):
        KafkaSource(kafka_broker.bootstrap, "t", decode, start="latest")
    with pytest.raises(ConfigurationError, match="delivery"):
        KafkaSink(kafka_broker.bootstrap, "t", encode, delivery="maybe")
    with pytest.raises(ConfigurationError, match="transactional_id_prefix"):
        KafkaSink(kafka_broker.bootstrap, "t", encode, config={"transactional.id": "shared"})
    env = StreamExecutionEnvironment.get_execution_environment()
    sink = CapturingSink()
    env.from_source(source, WatermarkStrategy.no_watermarks(), "absent").sink_to(sink)
    with pytest.raises(Exception, match="does not exist"):
        env.execute("missing topic")


def test_start_committed_continues_where_the_group_committed(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("committed")
    create_topic(kafka_broker.bootstrap, topic, 1)
    produce(kafka_broker.bootstrap, topic, [encode({"n": i}) for i in range(30)], 1)
    first = KafkaSource(kafka_broker.bootstrap, topic, decode, stop_offsets={0: 12}, group_id=topic)
    reader = first.create_reader(0, 1)
    reader.open(ReaderContext())
    try:
        assert [v["n"] for v in drain(reader)] == list(range(12))
        reader.snapshot_position()
        reader.notify_checkpoint_complete(1)
    finally:
        reader.close()
    again = KafkaSource(
        kafka_broker.bootstrap, topic, decode, group_id=topic, start="committed", bounded=True
    )
    reader = again.create_reader(0, 1)
    reader.open(ReaderContext())
    try:
        assert [v["n"] for v in drain(reader)] == list(range(12, 30))
    finally:
        reader.close()


def test_restored_committables_of_more_writers_are_committed_once_by_fewer(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    topic = kafka_topic("rescale")
    create_topic(kafka_broker.bootstrap, topic, 1)
    sink = KafkaSink(kafka_broker.bootstrap, topic, encode, transactional_id_prefix=topic)
    sealed = []
    for subtask in range(2):
        writer = sink.create_writer(subtask, 2)
        writer.open(WriterContext(subtask, 2, exactly_once=True))
        writer.write([{"n": subtask}])
        sealed.append(writer.prepare_commit(1))
        writer.close()
    # two writers of the restored job each get every committable; each commits its share
    for subtask in range(2):
        writer = sink.create_writer(subtask, 2)
        writer.open(WriterContext(subtask, 2, exactly_once=True))
        writer.commit(sealed)
        writer.close()
    # and a later restore with one writer finds them committed
    writer = sink.create_writer(0, 1)
    writer.open(WriterContext(0, 1, exactly_once=True))
    writer.commit(sealed)
    writer.close()
    records = read_topic(kafka_broker.bootstrap, topic, quiet_ms=300)
    assert sorted(json.loads(r.value or b"")["n"] for r in records) == [0, 1]


def test_a_restore_with_fewer_writers_fences_the_removed_writers_producers(
    kafka_broker: KafkaBroker, kafka_topic: Topic
) -> None:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    topic = kafka_topic("fence")
    create_topic(kafka_broker.bootstrap, topic, 1)
    sink = KafkaSink(kafka_broker.bootstrap, topic, encode, transactional_id_prefix=topic)
    # Old writer 2 of 3 sealed checkpoint 1 and is still alive, in the middle of a
    # transaction (a process the restart did not reach).
    old = sink.create_writer(2, 3)
    old.open(WriterContext(2, 3, exactly_once=True))
    old.write([{"n": 7}])
    sealed = old.prepare_commit(1)
    zombie = Producer(
        {"bootstrap.servers": kafka_broker.bootstrap, "transactional.id": f"{topic}-2"}
    )
    zombie.init_transactions(10)
    zombie.begin_transaction()
    zombie.produce(topic, encode({"n": 7}))
    assert zombie.flush(10) == 0
    # What the zombie's transaction would commit besides its records: an offset of a
    # group of its own (the broker hides it until the transaction commits).
    probe = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": f"{topic}-probe"})
    zombie.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 42)], probe.consumer_group_metadata(), 10
    )
    # The job restored with 2 writers: writer 0 stands in for old writer 2.
    for index in range(2):
        writer = sink.create_writer(index, 2)
        writer.open(
            WriterContext(
                index,
                2,
                exactly_once=True,
                restored=True,
                restored_committables=(sealed,),
                restored_subtasks=(0, 1, 2),
            )
        )
        writer.commit([sealed])
        writer.close()
    old.close()
    # The old producer can no longer commit. (Tansu hands a read-committed consumer the
    # records of transactions that never committed too, so the topic cannot show this;
    # the offset committed in the same transaction can.)
    with pytest.raises(KafkaException):
        zombie.commit_transaction(3)
    try:
        (probed,) = probe.committed([TopicPartition(topic, 0)], timeout=10)
        assert probed.offset < 0  # unset: the zombie's transaction never committed
    finally:
        probe.close()
    marker = KafkaSinkWriter(sink, 0, 1)
    marker.open(WriterContext(0, 1, exactly_once=True))
    try:
        assert marker._marker(sealed) == 1
    finally:
        marker.close()


@pytest.mark.parametrize(("first", "then"), [(2, 3), (2, 1), (1, 2)])
def test_a_job_restored_at_another_parallelism_reads_each_record_once(
    kafka_broker: KafkaBroker, kafka_topic: Topic, tmp_path: Path, first: int, then: int
) -> None:
    # Partitions move between readers with the parallelism (reader i reads n % p == i):
    # each new reader must continue its partitions at the offsets their old readers had.
    topic = kafka_topic("rescale-source")
    create_topic(kafka_broker.bootstrap, topic, 4)
    produce(kafka_broker.bootstrap, topic, [encode({"n": i}) for i in range(200)], 4)
    sink = CapturingSink()

    def run(parallelism: int, stop: int, restore: bool) -> None:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism).enable_checkpointing(60_000)
        env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path))
        if restore:
            env.restore_from("latest")
        source = KafkaSource(
            kafka_broker.bootstrap, topic, decode, stop_offsets=dict.fromkeys(range(4), stop)
        )
        strategy = WatermarkStrategy.for_monotonous_timestamps()  # per-partition watermarks
        env.from_source(source, strategy, "kafka-in").uid("kafka-in").map(lambda v: v["n"]).uid(
            "n"
        ).sink_to(sink).uid("out")
        env.execute("rescale")

    run(first, 20, restore=False)  # the first 20 of each partition, then a final checkpoint
    assert sorted(sink.results) == [i for i in range(200) if i // 4 < 20]
    run(then, 50, restore=True)
    assert Counter(sink.results) == Counter(range(200))


def test_a_reader_restored_at_another_parallelism_follows_only_its_partitions_watermarks(
    kafka_broker: KafkaBroker, kafka_topic: Topic, tmp_path: Path
) -> None:
    import time

    from fraudstream.datastream.functions import ProcessFunction
    from fraudstream.exceptions import JobFailedError

    # Record i is at 1000 + i ms in partition i % 4. Restored from 1 reader to 2, a reader
    # that kept the checkpointed watermarks of the other reader's partitions would be held
    # back at their times for the rest of the run.
    topic = kafka_topic("rescale-watermarks")
    create_topic(kafka_broker.bootstrap, topic, 4)
    produce(kafka_broker.bootstrap, topic, [encode({"n": i}) for i in range(400)], 4)

    class Watermarks(ProcessFunction):
        seen = 0
        fail_after: int | None = None

        def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Any:
            Watermarks.seen += 1
            if Watermarks.fail_after is not None:
                time.sleep(0.002)  # checkpoints (every 5 ms) come between records
                if Watermarks.seen > Watermarks.fail_after:
                    raise RuntimeError("crash")
            yield ctx.timer_service().current_watermark()

    def run(parallelism: int, restore: bool) -> list[int]:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism).set_batch_size(4).enable_checkpointing(5)
        env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path))
        if restore:
            env.restore_from("latest")
        source = KafkaSource(
            kafka_broker.bootstrap, topic, decode, stop_offsets=dict.fromkeys(range(4), 100)
        )
        sink = CapturingSink()
        env.from_source(source, WatermarkStrategy.for_monotonous_timestamps(), "kafka-in").uid(
            "kafka-in"
        ).process(Watermarks()).uid("probe").sink_to(sink).uid("out")
        env.execute("rescale watermarks")
        return sink.results

    Watermarks.fail_after = 100  # a crash in the middle of every partition
    with pytest.raises(JobFailedError, match="crash"):
        run(1, restore=False)
    Watermarks.fail_after = None
    assert any(tmp_path.glob("chk-*"))
    assert max(run(2, restore=True)) > 1000 + 300
