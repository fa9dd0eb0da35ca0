"""The Kafka source: partitions spread over parallel readers, offsets in checkpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from fraudstream.connectors.base import DeadLetter, ReaderContext, Source, SourceReader
from fraudstream.connectors.codecs import DEFAULT_MAX_RECORD_BYTES
from fraudstream.connectors.kafka._admin import (
    DEFAULT_QUIET_MS,
    REQUEST_TIMEOUT_S,
    client_config,
    partition_count,
)
from fraudstream.exceptions import ConfigurationError, InvalidRecordError, JobFailedError

__all__ = ["DEFAULT_MAX_BYTES", "KafkaSource", "KafkaSourceReader"]

T = TypeVar("T")

log = logging.getLogger("fraudstream.kafka")

#: Records larger than this go to the dead letters (the codecs' limit, 64 KiB).
DEFAULT_MAX_BYTES = DEFAULT_MAX_RECORD_BYTES


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
        client_config(bootstrap)
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

    def redistribute(self, positions: Sequence[Any], readers: int) -> list[Any] | None:
        """Every reader gets the offsets of all partitions and continues those it reads."""
        merged: dict[int, int] = {}
        for position in positions:
            if not isinstance(position, dict):
                raise ConfigurationError(f"bad Kafka source position in checkpoint: {position!r}")
            merged.update(position)
        return [dict(merged) for _ in range(readers)]


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
        self._at_end: dict[int, float] = {}  # partitions read to their end, and since when
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
        self._consumer = Consumer(client_config(source.bootstrap_servers, config))
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
            self._at_end.pop(partition, None)
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
                self._last_change = self.source.monotonic()
                self._at_end.setdefault(partition, self._last_change)
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

    def assigned_splits(self) -> Sequence[int] | None:
        """This reader's partitions: each holds the watermark back until it is read.

        Empty when it has none (more readers than partitions): it then keeps no restored
        partition's watermark either.
        """
        return list(self.partitions)

    def finished_splits(self) -> Sequence[int] | None:
        """Partitions read to their end: they stop holding the watermark back.

        With stop offsets, those reached; in a bounded read without them, those that
        have been at their end for ``quiet_ms`` (the test the read's own end uses), so a
        partition momentarily read up to a producer does not let the watermark pass the
        records it writes next.
        """
        source = self.source
        if source.stop_offsets is not None:
            return list(self._done) or None
        if not source.bounded or not self._at_end:
            return None
        quiet_since = source.monotonic() - source.quiet_ms / 1000
        return [p for p, since in self._at_end.items() if since <= quiet_since] or None

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
