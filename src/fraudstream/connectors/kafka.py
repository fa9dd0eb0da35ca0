"""Kafka source and sink (``confluent-kafka``), with offsets and transactions in checkpoints.

Source
    Partitions are spread over the parallel readers deterministically: reader ``i`` of
    ``p`` reads the partitions ``n`` with ``n % p == i``, assigned by hand (no group
    rebalancing, so a checkpoint's positions always belong to the same reader). A
    reader's position is ``{partition: next offset}``; restoring seeks there. Once a
    checkpoint is complete, its offsets are also committed to the consumer group so
    that monitoring tools show the job's lag; the checkpoint, not the group, is the
    truth. A bounded reader ends at given end offsets, or where it finds the end of
    every partition by reading (the broker's end-of-partition signal, confirmed by a
    quiet period), because some brokers (Tansu 0.6) answer wrong high watermarks to
    ``ListOffsets``.

Sink
    Without checkpointing: an idempotent producer, at least once. With checkpointing:
    exactly once through Kafka transactions, in the write-ahead style. Records written
    between two checkpoints are kept in the writer; at checkpoint ``n`` they are sealed
    into a committable that is part of the checkpoint; when ``n`` is complete they are
    produced in one transaction together with a *commit marker*: the offset ``n``
    committed for a per-writer consumer group inside the same transaction. After a
    crash the committables of the restored checkpoint are committed again, and the
    marker says whether that already happened, so nothing is lost and nothing is
    written twice. (Flink's Kafka sink instead resumes the crashed producer's open
    transaction; librdkafka cannot resume a transaction, and a new producer with the
    same ``transactional.id`` aborts it.)

    Where a broker does not filter aborted transactions for ``read_committed``
    consumers (Tansu 0.6), a crash in the middle of a commit can leave an aborted copy
    of that batch visible: no record is lost, and the copies are removed by the
    records' dedupe key (tutorial alerts: ``(accountId, timestamp)``; rule alerts:
    ``(ruleId, triggeringEvent.transactionId)``).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fraudstream.connectors.base import (
    DeadLetter,
    ReaderContext,
    Sink,
    SinkWriter,
    Source,
    SourceReader,
    WriterContext,
)
from fraudstream.exceptions import ConfigurationError, InvalidRecordError, JobFailedError
from fraudstream.fraud.transaction import TRANSACTION_FIELDS, Transaction

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KafkaCommittable",
    "KafkaRecord",
    "KafkaSink",
    "KafkaSource",
    "create_topic",
    "partition_count",
    "read_topic",
]

T = TypeVar("T")

log = logging.getLogger("fraudstream.kafka")

#: Records larger than this go to the dead letters (1 MiB, Kafka's default message limit).
DEFAULT_MAX_BYTES = 1 << 20
#: How long a bounded reader waits, after reaching the end of every partition, for more.
DEFAULT_QUIET_MS = 500
#: Timeouts of blocking broker calls (metadata, transactions), seconds.
REQUEST_TIMEOUT_S = 30.0


def _client_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        raise ConfigurationError(f"Kafka bootstrap servers must be 'HOST:PORT', got {bootstrap!r}")
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 3}
    config.update(extra or {})
    return config


# -- admin helpers ------------------------------------------------------------------------------
def partition_count(bootstrap: str, topic: str, timeout_s: float = 10.0) -> int | None:
    """The number of partitions of ``topic``, or None if it does not exist."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(_client_config(bootstrap))
    # All topics, not just this one: asking for one topic by name auto-creates it on some
    # brokers (Tansu).
    metadata = admin.list_topics(timeout=timeout_s)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        return None
    return len(found.partitions)


def create_topic(bootstrap: str, topic: str, partitions: int = 1, timeout_s: float = 10.0) -> bool:
    """Create ``topic`` with ``partitions`` partitions; False if it already existed."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    if partitions < 1:
        raise ConfigurationError(f"a topic needs at least 1 partition, got {partitions}")
    admin = AdminClient(_client_config(bootstrap))
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )[topic]
    try:
        future.result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise ConfigurationError(f"cannot create Kafka topic {topic!r}: {exc}") from exc
    return True


@dataclass(frozen=True)
class KafkaRecord:
    """One record read back by :func:`read_topic`."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expected: int | None = None,
    timeout_s: float = 30.0,
    quiet_ms: int = DEFAULT_QUIET_MS,
    read_committed: bool = True,
) -> list[KafkaRecord]:
    """Every record of ``topic``, found by reading to the end of each partition.

    Stops when ``expected`` records were read, or when every partition reported its end
    and nothing more arrived for ``quiet_ms``; raises TimeoutError after ``timeout_s``.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    count = partition_count(bootstrap, topic)
    if count is None:
        raise ConfigurationError(f"Kafka topic {topic!r} does not exist on {bootstrap}")
    consumer = Consumer(
        _client_config(
            bootstrap,
            {
                "group.id": f"fraudstream-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            },
        )
    )
    records: list[KafkaRecord] = []
    at_end: set[int] = set()
    last_change = time.monotonic()
    deadline = last_change + timeout_s
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
        while True:
            now = time.monotonic()
            if expected is not None and len(records) >= expected:
                return records
            if expected is None and len(at_end) == count and now - last_change >= quiet_ms / 1e3:
                return records
            if now > deadline:
                raise TimeoutError(
                    f"read {len(records)} records of {topic!r} in {timeout_s}s"
                    + (f", expected {expected}" if expected is not None else "")
                )
            for message in consumer.consume(10_000, timeout=0.05):
                error = message.error()
                partition = int(message.partition() or 0)
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(partition)
                        last_change = time.monotonic()
                        continue
                    raise JobFailedError(f"reading Kafka topic {topic!r} failed: {error}")
                at_end.discard(partition)
                last_change = time.monotonic()
                records.append(
                    KafkaRecord(
                        partition,
                        int(message.offset() or 0),
                        message.key(),
                        message.value(),
                        message.timestamp()[1],
                    )
                )
    finally:
        consumer.close()


# -- source -------------------------------------------------------------------------------------
class KafkaSource(Source[T]):
    """Reads a Kafka topic; partitions are spread over the parallel readers.

    Args:
        bootstrap: ``HOST:PORT[,HOST:PORT...]``.
        topic: the topic to read.
        deserializer: bytes -> record; raises :class:`InvalidRecordError` (or ValueError)
            for a bad record, which then goes to the dead letters with its position.
        group_id: the consumer group offsets are committed to after each checkpoint
            (default ``fraudstream.<topic>``).
        start: ``"earliest"`` (default) or ``"committed"`` (the group's offsets, else
            earliest) when not restoring from a checkpoint.
        max_bytes: records larger than this are dead letters.
        bounded: end once the end of every partition is reached (by reading).
        stop_offsets: end each partition at this offset (exclusive); implies bounded.
        quiet_ms: a bounded reader at the end of all partitions ends after this long
            without new records.
        config: extra librdkafka consumer settings.
        monotonic: the clock (seconds) of the quiet period.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        deserializer: Callable[[bytes], T],
        *,
        group_id: str | None = None,
        start: str = "earliest",
        max_bytes: int = DEFAULT_MAX_BYTES,
        bounded: bool = False,
        stop_offsets: Mapping[int, int] | None = None,
        quiet_ms: int = DEFAULT_QUIET_MS,
        config: Mapping[str, Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        _client_config(bootstrap)
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"Kafka topic must be a non-empty string, got {topic!r}")
        if start not in ("earliest", "committed"):
            raise ConfigurationError(f"start must be 'earliest' or 'committed', got {start!r}")
        if max_bytes < 1:
            raise ConfigurationError(f"max_bytes must be positive, got {max_bytes}")
        self.bootstrap_servers = bootstrap
        self.topic = topic
        self.deserializer = deserializer
        self.group_id = group_id or f"fraudstream.{topic}"
        self.start = start
        self.max_bytes = max_bytes
        self.stop_offsets = dict(stop_offsets) if stop_offsets is not None else None
        self.bounded = bounded or stop_offsets is not None
        self.quiet_ms = quiet_ms
        self.config = dict(config or {})
        self.monotonic = monotonic

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[T]:
        """A reader of the partitions ``n % parallelism == subtask_index``."""
        return KafkaSourceReader(self, subtask_index, parallelism)


class KafkaSourceReader(SourceReader[T]):
    """One parallel instance of :class:`KafkaSource`."""

    def __init__(self, source: KafkaSource[T], subtask_index: int, parallelism: int) -> None:
        self.source = source
        self.subtask_index = subtask_index
        self.parallelism = parallelism
        self.partitions: list[int] = []
        self.positions: dict[int, int] = {}
        self._restored = False
        self._assigned = False
        self._consumer: Any = None
        self._context = ReaderContext()
        self._timestamps: list[int] = []
        self._splits: list[int] = []
        self._at_end: set[int] = set()
        self._done: set[int] = set()
        self._last_change = 0.0
        self._last_snapshot: dict[int, int] | None = None
        self.records_read = 0
        self.dead_letters = 0

    def open(self, context: ReaderContext) -> None:
        """Find the topic's partitions and create the consumer (assigned at the first poll)."""
        from confluent_kafka import Consumer

        source = self.source
        self._context = context
        count = partition_count(source.bootstrap_servers, source.topic)
        if count is None:
            raise ConfigurationError(
                f"Kafka topic {source.topic!r} does not exist on {source.bootstrap_servers}; "
                "create it first (e.g. with partitions=N in the sink spec)"
            )
        self.partitions = [p for p in range(count) if p % self.parallelism == self.subtask_index]
        config = {
            "group.id": source.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50,
        }
        config.update(source.config)
        self._consumer = Consumer(_client_config(source.bootstrap_servers, config))
        self._last_change = source.monotonic()

    def restore_position(self, position: Any) -> None:
        """Continue at ``{partition: next offset}`` of a checkpoint."""
        if not isinstance(position, dict):
            raise ConfigurationError(f"bad Kafka source position in checkpoint: {position!r}")
        for partition in self.partitions:
            if partition in position:
                self.positions[partition] = int(position[partition])
        self._restored = True

    def _assign(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        source = self.source
        consumer = self._consumer
        topic = source.topic
        if not self._restored and source.start == "committed" and self.partitions:
            committed = consumer.committed(
                [TopicPartition(topic, p) for p in self.partitions], timeout=REQUEST_TIMEOUT_S
            )
            for tp in committed:
                if tp.offset >= 0:
                    self.positions[tp.partition] = tp.offset
        assignment = []
        for partition in self.partitions:
            offset = self.positions.get(partition, OFFSET_BEGINNING)
            if offset >= 0:
                self.positions[partition] = offset
            assignment.append(TopicPartition(topic, partition, offset))
        consumer.assign(assignment)
        self._assigned = True
        if source.stop_offsets is not None:
            for partition in self.partitions:
                self._check_stop(partition)

    def _check_stop(self, partition: int) -> None:
        stop = self.source.stop_offsets
        if stop is None or partition in self._done:
            return
        if self.positions.get(partition, 0) >= stop.get(partition, 0):
            self._done.add(partition)
            if self._consumer is not None and self._assigned:
                from confluent_kafka import TopicPartition

                self._consumer.pause([TopicPartition(self.source.topic, partition)])

    def poll(self, max_records: int) -> Sequence[T] | None:
        """Records ready now (never waits), ``None`` once a bounded reader is done."""
        if not self._assigned:
            self._assign()
        source = self.source
        if source.bounded and self._finished():
            return None
        if not self.partitions:
            return []
        messages = self._consumer.consume(max_records, timeout=0)
        out: list[T] = []
        stamps: list[int] = []
        parts: list[int] = []
        self._timestamps, self._splits = stamps, parts
        if not messages:
            return out
        deserialize = source.deserializer
        max_bytes = source.max_bytes
        stop = source.stop_offsets
        positions = self.positions
        for message in messages:
            error = message.error()
            partition = message.partition()
            if error is not None:
                self._on_error(error, partition, message.offset())
                continue
            offset = message.offset()
            if partition in self._done:
                continue  # past its stop offset; fetched before the pause took effect
            if stop is not None and offset >= stop.get(partition, 0):
                self._check_stop(partition)
                continue
            positions[partition] = offset + 1
            self._at_end.discard(partition)
            raw = message.value()
            if raw is None:
                self._dead(b"", "empty record (null value)", partition, offset)
            elif len(raw) > max_bytes:
                self._dead(
                    raw[:max_bytes],
                    f"record of {len(raw)} bytes exceeds the limit of {max_bytes} bytes "
                    f"(raw bytes truncated to the limit)",
                    partition,
                    offset,
                )
            else:
                try:
                    value = deserialize(raw)
                except InvalidRecordError as exc:
                    self._dead(raw, exc.reason, partition, offset)
                except ValueError as exc:
                    self._dead(raw, f"{type(exc).__name__}: {exc}", partition, offset)
                else:
                    out.append(value)
                    stamps.append(message.timestamp()[1])
                    parts.append(partition)
            if stop is not None and offset + 1 >= stop.get(partition, 0):
                self._check_stop(partition)
        self._last_change = source.monotonic()
        self.records_read += len(out)
        return out

    def _on_error(self, error: Any, partition: int, offset: int) -> None:
        from confluent_kafka import KafkaError

        if error.code() == KafkaError._PARTITION_EOF:
            if offset >= self.positions.get(partition, 0):
                self._at_end.add(partition)
                self._last_change = self.source.monotonic()
            return
        if error.fatal() or error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        ):
            raise JobFailedError(f"Kafka source of {self.source.topic!r} failed: {error}")
        log.warning("Kafka source of %r: %s", self.source.topic, error)

    def _dead(self, raw: bytes, reason: str, partition: int, offset: int) -> None:
        self.dead_letters += 1
        self._context.dead_letter(
            DeadLetter(raw, reason, f"kafka:{self.source.topic}", f"{partition}:{offset}")
        )

    def _finished(self) -> bool:
        if not self.partitions:
            return True
        if self.source.stop_offsets is not None:
            return len(self._done) == len(self.partitions)
        if len(self._at_end) < len(self.partitions):
            return False
        return (self.source.monotonic() - self._last_change) * 1000 >= self.source.quiet_ms

    def timestamps(self) -> Sequence[int] | None:
        """The Kafka timestamps (ms) of the last poll's records."""
        return self._timestamps

    def splits(self) -> Sequence[int] | None:
        """The partition of each of the last poll's records (watermarks per partition)."""
        return self._splits

    def snapshot_position(self) -> Any:
        """``{partition: next offset}`` of this reader's partitions."""
        snapshot = dict(self.positions)
        self._last_snapshot = snapshot
        return snapshot

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Commit the checkpoint's offsets to the consumer group (for monitoring)."""
        from confluent_kafka import KafkaException, TopicPartition

        snapshot = self._last_snapshot
        if not snapshot or self._consumer is None:
            return
        offsets = [TopicPartition(self.source.topic, p, o) for p, o in snapshot.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # monitoring only: the checkpoint holds the truth
            log.warning("committing offsets of %r failed: %s", self.source.topic, exc)

    def close(self) -> None:
        """Close the consumer (without committing: offsets live in checkpoints)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()


# -- sink ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KafkaCommittable:
    """Records sealed at a checkpoint, to produce in one transaction once it completes.

    Attributes:
        transactional_id: the writer's ``transactional.id`` (names its marker group).
        subtask_index: the writer that sealed it.
        lineage: the run (and its restored continuations) that sealed it.
        checkpoint_id: the checkpoint, also the value of the commit marker.
        records: ``(key, value)`` pairs in write order.
    """

    transactional_id: str
    subtask_index: int
    lineage: str
    checkpoint_id: int
    records: tuple[tuple[bytes | None, bytes], ...]


#: Checkpoint id the runtime passes to ``prepare_commit`` at the end of input.
_END_OF_INPUT = 2**62


class KafkaSink(Sink[T]):
    """Writes records to a Kafka topic, keyed; exactly once with checkpoints.

    Args:
        bootstrap: ``HOST:PORT[,HOST:PORT...]``.
        topic: the topic to write (it must exist; see :func:`create_topic`).
        serializer: record -> bytes (e.g. ``codecs.to_json_bytes``).
        key_fn: record -> key (bytes, str or int; None for no key); records with the
            same key land in the same partition, in order.
        transactional_id_prefix: stable name of this sink across restarts (default
            ``fraudstream.<topic>``); writer ``i`` uses ``<prefix>-<i>``.
        delivery: ``"exactly-once"`` (transactions when the job checkpoints, the
            default) or ``"at-least-once"`` (idempotent producer always).
        config: extra librdkafka producer settings.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        serializer: Callable[[T], bytes],
        key_fn: Callable[[T], bytes | str | int | None] | None = None,
        *,
        transactional_id_prefix: str | None = None,
        delivery: str = "exactly-once",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        _client_config(bootstrap)
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"Kafka topic must be a non-empty string, got {topic!r}")
        if delivery not in ("exactly-once", "at-least-once"):
            raise ConfigurationError(
                f"delivery must be 'exactly-once' or 'at-least-once', got {delivery!r}"
            )
        self.bootstrap_servers = bootstrap
        self.topic = topic
        self.serializer = serializer
        self.key_fn = key_fn
        self.transactional_id_prefix = transactional_id_prefix or f"fraudstream.{topic}"
        self.delivery = delivery
        self.config = dict(config or {})

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[T]:
        """A writer for one parallel instance."""
        return KafkaSinkWriter(self, subtask_index, parallelism)


def _key_bytes(key: bytes | str | int | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return str(key).encode()


class KafkaSinkWriter(SinkWriter[T]):
    """One parallel instance of :class:`KafkaSink`."""

    def __init__(self, sink: KafkaSink[T], subtask_index: int, parallelism: int) -> None:
        self.sink = sink
        self.subtask_index = subtask_index
        self.parallelism = parallelism
        self.transactional_id = f"{sink.transactional_id_prefix}-{subtask_index}"
        self.exactly_once = False
        self.lineage: str | None = None
        self._producer: Any = None
        self._buffer: list[tuple[bytes | None, bytes]] = []
        self._sealed: set[tuple[str, int]] = set()
        self._last_checkpoint = 0
        self._markers: dict[str, Any] = {}
        self._errors: list[str] = []
        self.records_written = 0

    def open(self, context: WriterContext) -> None:
        """Create the producer: transactional with checkpoints, idempotent otherwise."""
        from confluent_kafka import Producer

        sink = self.sink
        self.exactly_once = context.exactly_once and sink.delivery == "exactly-once"
        config: dict[str, Any] = {"linger.ms": 5, "partitioner": "murmur2_random"}
        if self.exactly_once:
            config["transactional.id"] = self.transactional_id
        else:
            config["enable.idempotence"] = True
        config.update(sink.config)
        self._producer = Producer(_client_config(sink.bootstrap_servers, config))
        if self.exactly_once:
            # Fences any zombie with the same transactional.id and aborts its open transaction.
            self._producer.init_transactions(REQUEST_TIMEOUT_S)

    def _encode(self, values: Iterable[T]) -> list[tuple[bytes | None, bytes]]:
        serialize, key_fn = self.sink.serializer, self.sink.key_fn
        if key_fn is None:
            return [(None, serialize(v)) for v in values]
        return [(_key_bytes(key_fn(v)), serialize(v)) for v in values]

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self._errors.append(str(error))

    def _produce(self, records: Iterable[tuple[bytes | None, bytes]]) -> None:
        producer, topic, callback = self._producer, self.sink.topic, self._on_delivery
        for key, value in records:
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=callback)
                    break
                except BufferError:
                    producer.poll(0.05)  # the local queue is full: let deliveries drain
        producer.poll(0)

    def write(self, values: Sequence[T]) -> None:
        """Produce at once (at least once) or keep until the next checkpoint (exactly once)."""
        records = self._encode(values)
        self.records_written += len(records)
        if self.exactly_once:
            self._buffer.extend(records)
        else:
            self._produce(records)
            self._raise_delivery_errors()

    def _raise_delivery_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise JobFailedError(
                f"Kafka sink of {self.sink.topic!r}: {len(errors)} record(s) not delivered: "
                f"{errors[0]}"
            )

    def flush(self) -> None:
        """Wait until every produced record is acknowledged (raises on delivery errors)."""
        if self._producer is None:
            return
        remaining = self._producer.flush(REQUEST_TIMEOUT_S)
        if remaining:
            raise JobFailedError(
                f"Kafka sink of {self.sink.topic!r}: {remaining} record(s) still unacknowledged "
                f"after {REQUEST_TIMEOUT_S}s"
            )
        self._raise_delivery_errors()

    def prepare_commit(self, checkpoint_id: int) -> Any:
        """Seal the records written since the last checkpoint (exactly once) or flush."""
        if not self.exactly_once:
            self.flush()
            return None
        if checkpoint_id == _END_OF_INPUT:
            checkpoint_id = self._last_checkpoint + 1  # keep markers small and increasing
        self._last_checkpoint = checkpoint_id
        if not self._buffer:
            return None
        if self.lineage is None:
            self.lineage = uuid.uuid4().hex[:16]
        records, self._buffer = tuple(self._buffer), []
        self._sealed.add((self.lineage, checkpoint_id))
        return KafkaCommittable(
            self.transactional_id, self.subtask_index, self.lineage, checkpoint_id, records
        )

    def commit(self, committables: Sequence[Any]) -> None:
        """Produce each committable in one transaction with its marker, unless already done.

        Restored committables are spread over the writers by ``subtask_index %
        parallelism``, so each is committed by exactly one writer.
        """
        ordered = sorted(committables, key=lambda c: (c.lineage, c.checkpoint_id))
        for committable in ordered:
            if not isinstance(committable, KafkaCommittable):
                raise JobFailedError(f"not a Kafka committable: {committable!r}")
            if committable.subtask_index % self.parallelism != self.subtask_index:
                continue
            own = (committable.lineage, committable.checkpoint_id) in self._sealed
            if not own:
                if self.lineage is None:
                    self.lineage = committable.lineage  # a restored run continues the lineage
                self._last_checkpoint = max(self._last_checkpoint, committable.checkpoint_id)
                marker = self._marker(committable)
                if marker >= committable.checkpoint_id:
                    log.info(
                        "%s: checkpoint %d (%d records) was committed before the restart",
                        self.transactional_id,
                        committable.checkpoint_id,
                        len(committable.records),
                    )
                    continue
                log.info(
                    "%s: committing checkpoint %d (%d records) again after the restart "
                    "(last commit marker %d)",
                    self.transactional_id,
                    committable.checkpoint_id,
                    len(committable.records),
                    marker,
                )
            self._commit_one(committable)
            self._sealed.discard((committable.lineage, committable.checkpoint_id))

    def _marker_consumer(self, committable: KafkaCommittable) -> Any:
        from confluent_kafka import Consumer

        group = f"fraudstream-commits.{committable.transactional_id}.{committable.lineage}"
        consumer = self._markers.get(group)
        if consumer is None:
            consumer = Consumer(
                _client_config(
                    self.sink.bootstrap_servers, {"group.id": group, "enable.auto.commit": False}
                )
            )
            self._markers[group] = consumer
        return consumer

    def _marker(self, committable: KafkaCommittable) -> int:
        from confluent_kafka import TopicPartition

        consumer = self._marker_consumer(committable)
        (found,) = consumer.committed(
            [TopicPartition(self.sink.topic, 0)], timeout=REQUEST_TIMEOUT_S
        )
        return int(found.offset)

    def _commit_one(self, committable: KafkaCommittable) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        producer = self._producer
        marker = self._marker_consumer(committable)
        try:
            producer.begin_transaction()
            self._produce(committable.records)
            producer.send_offsets_to_transaction(
                [TopicPartition(self.sink.topic, 0, committable.checkpoint_id)],
                marker.consumer_group_metadata(),
                REQUEST_TIMEOUT_S,
            )
            producer.commit_transaction(REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if error is not None and getattr(error, "txn_requires_abort", lambda: False)():
                producer.abort_transaction(REQUEST_TIMEOUT_S)
            raise JobFailedError(
                f"Kafka sink of {self.sink.topic!r}: committing checkpoint "
                f"{committable.checkpoint_id} failed: {exc}"
            ) from exc
        self._raise_delivery_errors()

    def close(self) -> None:
        """Release the producer and marker consumers (nothing is committed here)."""
        for consumer in self._markers.values():
            consumer.close()
        self._markers.clear()
        producer, self._producer = self._producer, None
        if producer is not None and not self.exactly_once:
            producer.flush(1.0)


# -- command-line specs ---------------------------------------------------------------------------
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
