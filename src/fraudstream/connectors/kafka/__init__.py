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

from fraudstream.connectors.kafka._admin import (
    KafkaRecord,
    create_topic,
    partition_count,
    read_topic,
)
from fraudstream.connectors.kafka._sink import KafkaCommittable, KafkaSink, KafkaSinkWriter
from fraudstream.connectors.kafka._source import DEFAULT_MAX_BYTES, KafkaSource, KafkaSourceReader
from fraudstream.connectors.kafka._specs import sink_from_spec, source_from_spec

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KafkaCommittable",
    "KafkaRecord",
    "KafkaSink",
    "KafkaSinkWriter",
    "KafkaSource",
    "KafkaSourceReader",
    "create_topic",
    "partition_count",
    "read_topic",
    "sink_from_spec",
    "source_from_spec",
]
