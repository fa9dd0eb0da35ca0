"""The Kafka sink: idempotent (at least once), or transactional (exactly once) with checkpoints."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fraudstream.connectors.base import Sink, SinkWriter, WriterContext
from fraudstream.connectors.kafka._admin import REQUEST_TIMEOUT_S, client_config
from fraudstream.exceptions import ConfigurationError, JobFailedError

__all__ = ["KafkaCommittable", "KafkaSink", "KafkaSinkWriter"]

T = TypeVar("T")

log = logging.getLogger("fraudstream.kafka")


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
        client_config(bootstrap)
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
        if "transactional.id" in (config or {}):
            raise ConfigurationError(
                "set the Kafka sink's transactional ids with transactional_id_prefix, not "
                "config['transactional.id'] (each writer needs an id of its own)"
            )
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
        self._producer = Producer(client_config(sink.bootstrap_servers, config))
        if self.exactly_once:
            # Fences any zombie with the same transactional.id and aborts its open transaction.
            self._producer.init_transactions(REQUEST_TIMEOUT_S)
            self._fence_removed_writers(context, config)

    def _fence_removed_writers(self, context: WriterContext, config: dict[str, Any]) -> None:
        """Fence the producers of old writers that this restore at a lower parallelism removed.

        Old writer ``j >= parallelism`` has no successor with its ``transactional.id``, so
        nothing else would abort a transaction it left open (read-committed consumers would
        wait for the broker's transaction timeout) or stop it if it still runs: it could
        commit its checkpoint while this writer, which commits ``j``'s share, finds the
        marker not yet there and commits it too. Initialising a producer with ``j``'s id
        bumps its epoch, so the old one can no longer commit, before ``commit`` reads any
        marker.

        Only the ids of the run the checkpoint was taken from are known: restored from an
        older checkpoint, writers of a later run at a higher parallelism are not fenced
        (Flink probes further ids by their epoch, which librdkafka does not expose).
        """
        from confluent_kafka import Producer

        for old in sorted(set(context.restored_subtasks)):
            if old < self.parallelism or old % self.parallelism != self.subtask_index:
                continue
            transactional_id = f"{self.sink.transactional_id_prefix}-{old}"
            stand_in = Producer(
                client_config(
                    self.sink.bootstrap_servers, {**config, "transactional.id": transactional_id}
                )
            )
            try:
                stand_in.init_transactions(REQUEST_TIMEOUT_S)
            finally:
                close = getattr(stand_in, "close", None)  # not in older confluent-kafka
                if close is not None:
                    close()
                del stand_in
            log.info(
                "%s: fenced %s, a writer of the restored run",
                self.transactional_id,
                transactional_id,
            )

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
        parallelism``, so each is committed by exactly one writer: the runtime hands them
        out so, and the check below keeps it so for a caller that passes all of them.
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
                client_config(
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
