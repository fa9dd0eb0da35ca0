"""The demo's web service in a Kafka deployment: :class:`KafkaDemoEngine`.

The rules job runs elsewhere (``fraudstream job rules --source kafka://.../transactions
--rules kafka://.../rules --sink kafka://.../alerts``, or the same job on Flink); this
process keeps what the embedded demo keeps (rule book, alert history, generator, web app)
and talks to the job only through the demo's topics:

- ``transactions``: the generator's output, produced here;
- ``rules``: every rule change, as rule JSON; at start the whole rule book is published
  again, so a job reading the topic from its beginning ends with the current set;
- ``alerts``: read here into the alert store and the browsers;
- ``dead-letters``: the job's bad records (``fraudstream job rules ... --dead-letters
  kafka://.../dead-letters``), counted here into the dead-letter metric, so the UI and
  ``/metrics`` show what the job refused as well as what this process refused.

The service's own little job (generator -> topic, alerts topic -> web) checkpoints into
the data directory, so a restarted service resumes the alerts topic where it was and
does not store an alert twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fraudstream.common import WatermarkStrategy
from fraudstream.connectors.inprocess import CallbackSink
from fraudstream.connectors.specs import make_sink, make_source
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError
from fraudstream.fraud.rules import Rule
from fraudstream.service.engine import DemoEngine

__all__ = ["DEFAULT_TOPICS", "KafkaDemoEngine"]

log = logging.getLogger(__name__)

#: The demo's topic layout (role -> topic name).
DEFAULT_TOPICS: dict[str, str] = {
    "transactions": "transactions",
    "rules": "rules",
    "alerts": "alerts",
    "dead-letters": "dead-letters",
}

_ALERT_FIELDS = ("ruleId", "key", "alertTime", "triggeringEvent")


class KafkaDemoEngine(DemoEngine):
    """A :class:`DemoEngine` whose rules job is reached through Kafka topics.

    Args:
        bootstrap: ``HOST:PORT`` of the Kafka-protocol broker.
        data_dir: rules, alert history and the service's checkpoints.
        topics: role -> topic name, defaults to :data:`DEFAULT_TOPICS`.
        checkpoint_interval_ms: checkpoints of the service's own job.
        **options: passed on to :class:`DemoEngine` (``rate``, ``seed``, ...).
    """

    job_name = "fraudstream serve"

    def __init__(
        self,
        bootstrap: str,
        data_dir: str | Path,
        *,
        topics: Mapping[str, str] | None = None,
        checkpoint_interval_ms: int = 1000,
        **options: Any,
    ) -> None:
        host, _, port = bootstrap.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"--kafka {bootstrap!r}: expected HOST:PORT")
        self.bootstrap = bootstrap
        self.topics = {**DEFAULT_TOPICS, **(topics or {})}
        super().__init__(data_dir, checkpoint_interval_ms=checkpoint_interval_ms, **options)
        self._producer: Any = None
        self.refused_alerts = 0
        self.job_dead_letters = 0

    def _spec(self, role: str, options: str = "partitions=1") -> str:
        return f"kafka://{self.bootstrap}/{self.topics[role]}?{options}"

    def start(self) -> None:
        """Make the topics, publish the rule book, then start the service's job."""
        from confluent_kafka import Producer

        from fraudstream.connectors.kafka import create_topic

        for topic in self.topics.values():
            create_topic(self.bootstrap, topic, 1)
        self._producer = Producer(
            {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "linger.ms": 5}
        )
        self.push_rules()
        super().start()

    def close(self) -> None:
        """Stop, flush what is still to be produced, close the stores."""
        super().close()
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None

    def _build_job(self, env: StreamExecutionEnvironment) -> None:
        transactions = env.from_source(
            self.generator, WatermarkStrategy.no_watermarks(), "transactions"
        ).uid("transactions")
        transactions.sink_to(
            make_sink(self._spec("transactions", "delivery=at-least-once"), "transactions")
        ).uid("transactions-topic")
        transactions.sink_to(CallbackSink(self._on_transactions)).uid("ui-transactions")
        group = f"fraudstream-serve-{uuid.uuid4().hex[:8]}"
        self._follow(env, "alerts", "alerts", group, self._on_topic_alerts)
        self._follow(env, "dead-letters", "json", group, self._on_job_dead_letters)

    def _follow(
        self,
        env: StreamExecutionEnvironment,
        role: str,
        codec: str,
        group: str,
        callback: Callable[[Sequence[Any]], None],
    ) -> None:
        """Read the ``role`` topic (records decoded as ``codec``) into ``callback``."""
        env.from_source(
            make_source(self._spec(role, f"group={group}"), codec),
            WatermarkStrategy.no_watermarks(),
            role,
        ).uid(f"{role}-topic").sink_to(CallbackSink(callback)).uid(f"ui-{role}")

    def _on_job_dead_letters(self, batch: Sequence[Any]) -> None:
        """The job's dead letters: counted, whatever they hold (they are bad records)."""
        self.job_dead_letters += len(batch)
        self.dead_letters.add(len(batch))

    def _on_topic_alerts(self, batch: Sequence[Any]) -> None:
        """Alerts read from the topic: anything that is not an alert is counted, not stored."""
        good: list[dict[str, Any]] = []
        for record in batch:
            if (
                isinstance(record, dict)
                and all(name in record for name in _ALERT_FIELDS)
                and isinstance(record["triggeringEvent"], dict)
                and isinstance(record["triggeringEvent"].get("ingestionTimestamp"), int)
            ):
                good.append(record)
            else:
                self.refused_alerts += 1
                self.dead_letters.add(1)
        if good:
            self._on_alert_dicts(good)
            # The job's latency stream stays in the job; chart event-to-alert latency instead.
            now_ms = time.time_ns() // 1_000_000
            self._on_latency(
                [now_ms - int(a["triggeringEvent"]["ingestionTimestamp"]) for a in good]
            )

    def _push(self, rule: Rule) -> None:
        producer = self._producer
        if producer is None:
            return
        body = json.dumps(rule.to_json_dict(), separators=(",", ":")).encode("utf-8")
        producer.produce(self.topics["rules"], value=body)
        if producer.flush(10) > 0:
            log.warning("a rule change has not reached Kafka topic %r yet", self.topics["rules"])
