"""Topic helpers: create, count partitions, read a whole topic back (by counting)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraudstream.exceptions import ConfigurationError, JobFailedError

__all__ = [
    "DEFAULT_QUIET_MS",
    "REQUEST_TIMEOUT_S",
    "KafkaRecord",
    "client_config",
    "create_topic",
    "partition_count",
    "read_topic",
]

#: How long a reader at the end of every partition waits for more before it ends.
DEFAULT_QUIET_MS = 500

#: Timeouts of blocking broker calls (metadata, transactions), seconds.
REQUEST_TIMEOUT_S = 30.0


def client_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        raise ConfigurationError(f"Kafka bootstrap servers must be 'HOST:PORT', got {bootstrap!r}")
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 3}
    config.update(extra or {})
    return config


# -- admin helpers ------------------------------------------------------------------------------
def partition_count(bootstrap: str, topic: str, timeout_s: float = 10.0) -> int | None:
    """The number of partitions of ``topic``, or None if it does not exist."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(client_config(bootstrap))
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
    admin = AdminClient(client_config(bootstrap))
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
        client_config(
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
