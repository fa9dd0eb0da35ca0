"""The seam between the web app and the engine: :class:`DemoEngine`.

One object owns everything the demo runs in its process: the rule book and alert store
(SQLite in the data directory), the transaction generator, and the rules job running in a
background thread (``execute_async``). The web app only calls its methods; it never sees
the job's streams or the runtime.

Data paths (engine thread -> web):

- transactions: the generator feeds the job; a callback sink on the transaction stream
  counts them, keeps the most recent ones in a ring (for backtests) and offers a sample
  to the transactions hub;
- alerts: written to the alert store, counted, offered to the alerts hub;
- latency: recorded into bounded windows; the app turns them into chart points.

Rule changes go the other way: validated and versioned by the rule book first (a refused
rule changes nothing), then put into the job's rule queue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from fraudstream.common import Configuration, WatermarkStrategy
from fraudstream.connectors.codecs import transaction_to_json_dict
from fraudstream.connectors.generator import TransactionGenerator
from fraudstream.connectors.inprocess import CallbackSink, QueueSource
from fraudstream.connectors.sqlite import AlertStore
from fraudstream.datastream import JobClient, StreamExecutionEnvironment
from fraudstream.exceptions import ConfigurationError, RuleValidationError
from fraudstream.fraud.rules import Rule, RuleBook, build_rules_job, parse_rule
from fraudstream.fraud.transaction import Transaction
from fraudstream.runtime.gcscope import CONFIG_KEY as GC_CONFIG_KEY
from fraudstream.service.demo_metrics import demo_metric_samples
from fraudstream.service.hubs import Hub
from fraudstream.service.metrics import LatencyWindow, MetricSample, RateMeter, nearest_rank

__all__ = ["MAX_SPEED", "DemoEngine", "RuleNotFoundError", "default_rules", "exact_ids"]

log = logging.getLogger(__name__)

#: How far behind the newest transaction's event time others may arrive (ms).
OUT_OF_ORDERNESS_MS = 5_000

#: The fastest generator speed the API accepts (transactions per second).
MAX_SPEED = 100_000.0

#: Fields that carry 64-bit ids; browsers read JSON numbers as doubles (exact to 2**53),
#: so every JSON object sent out also carries them as strings, ``<field>Str``.
ID_FIELDS = ("transactionId", "payeeId", "beneficiaryId", "ruleId")

_ACTOR_DEFAULT = "demo"

#: Name prefixes of checkpoints (``DIR/chk-N``) and savepoints (``DIR/savepoints/...``).
_SNAPSHOTS = ("chk-", "savepoint-")


class RuleNotFoundError(LookupError):
    """No rule has the id asked for."""

    def __init__(self, rule_id: int) -> None:
        super().__init__(f"no rule with id {rule_id}")
        self.rule_id = rule_id


def exact_ids(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with a string copy of each 64-bit id field, nested dicts included."""
    out = dict(obj)
    for name, value in obj.items():
        if isinstance(value, dict):
            out[name] = exact_ids(value)
        elif name in ID_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            out[f"{name}Str"] = str(value)
    return out


def default_rules() -> list[dict[str, Any]]:
    """The demo's four rules, shipped inside the package."""
    text = resources.files("fraudstream.service").joinpath("demo_rules.json").read_text("utf-8")
    rules: list[dict[str, Any]] = json.loads(text)
    return rules


def rule_view(rule: Rule) -> dict[str, Any]:
    """A rule as the API and UI show it: wire form, id as string, readable sentence."""
    view = exact_ids(rule.to_json_dict())
    view["description"] = rule.describe()
    return view


class DemoEngine:
    """Runs the demo's rules job and answers the web app.

    Args:
        data_dir: where ``rules.sqlite``, ``alerts.sqlite`` and checkpoints live; ``None``
            keeps everything in memory (tests).
        rate: the generator's starting speed, transactions per second.
        seed: the generator's seed.
        checkpoint_interval_ms: take checkpoints this often (into ``data_dir/checkpoints``)
            and a final one at :meth:`stop`; ``None`` runs without checkpoints.
        recent_capacity: how many recent transactions are kept for backtests.
        load_defaults: load the demo's four rules on first start.
        stream_interval: seconds between two WebSocket messages of the transactions and
            alerts streams (each message carries everything sampled since the last).
        clock: monotonic seconds, for rates.
        workers: worker processes for the rules job's windows (parallelism ``workers``);
            the generator, the rules queue, the forking of transactions and the sinks into
            this object run in this process either way.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        rate: float = 20.0,
        seed: int = 0,
        checkpoint_interval_ms: int | None = None,
        recent_capacity: int = 20_000,
        load_defaults: bool = True,
        stream_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        workers: int = 1,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigurationError(f"workers {workers!r} must be a whole number >= 1")
        self.workers = workers
        if not 0 <= rate <= MAX_SPEED:
            raise ConfigurationError(f"rate {rate!r} must be between 0 and {MAX_SPEED:g}")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint_interval_ms is not None and self.data_dir is None:
            raise ConfigurationError("checkpoints need a data directory")
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self._lock = threading.RLock()
        self.rulebook = RuleBook(str(self.data_dir / "rules.sqlite") if self.data_dir else None)
        self.alert_store = AlertStore(
            str(self.data_dir / "alerts.sqlite") if self.data_dir else ":memory:"
        )
        if load_defaults:
            self._load_defaults_once()
        # Wall-clock event times: the demo is live, and latency is measured against now.
        self.generator = TransactionGenerator(seed=seed, rate=float(rate), time="clock")
        self._speed = float(rate)
        self._generating = True
        if rate == 0:
            self.generator.pause()

        self.events = RateMeter(clock=clock)
        self.alerts = RateMeter(clock=clock)
        self.dead_letters = RateMeter(clock=clock)
        self.latency = LatencyWindow()
        self.alert_latency = LatencyWindow()
        self._chart_latency = LatencyWindow(capacity=50_000)
        self.recent: deque[Transaction] = deque(maxlen=recent_capacity)

        self.transactions_hub = Hub(
            "transactions",
            lambda tx: exact_ids(transaction_to_json_dict(tx)),
            inbox_size=50,
            interval=stream_interval,
        )
        self.alerts_hub = Hub("alerts", exact_ids, inbox_size=100, interval=stream_interval)
        self.latency_hub = Hub("latency", inbox_size=20, interval=0.5)

        self._rules_queue: QueueSource[Rule] | None = None
        self._client: JobClient | None = None
        self.started_at: float | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def _load_defaults_once(self) -> None:
        marker = self.data_dir / ".defaults-loaded" if self.data_dir else None
        if marker is not None and marker.exists():
            return
        if not self.rulebook.list():
            for obj in default_rules():
                self.rulebook.upsert(obj, "defaults")
        if marker is not None:
            marker.write_text("the demo's default rules were loaded once\n", "utf-8")

    def _checkpoint_dir(self) -> Path | None:
        if self.checkpoint_interval_ms is None or self.data_dir is None:
            return None
        return self.data_dir / "checkpoints"

    def start(self) -> None:
        """Start the rules job in a background thread, fed with the current rule set."""
        with self._lock:
            if self._client is not None:
                return
            env = StreamExecutionEnvironment.get_execution_environment()
            # The rule windows are a million long-lived objects: collections that scan
            # them all are pauses of up to a second in the alert latency (runtime.gcscope).
            env.configure(Configuration().set_boolean(GC_CONFIG_KEY, True))
            env.set_parallelism(self.workers)
            if self.workers > 1:
                env.set_worker_processes(self.workers)
            restoring = False
            checkpoints = self._checkpoint_dir()
            if checkpoints is not None and self.checkpoint_interval_ms is not None:
                env.enable_checkpointing(self.checkpoint_interval_ms)
                env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoints))
                snapshot = self.newest_snapshot()
                restoring = snapshot is not None
                if snapshot is not None:
                    env.restore_from(str(snapshot))
            self._build_job(env)
            self._client = env.execute_async(self.job_name)
            self.started_at = time.time()
            if restoring:
                # The checkpoint's rules may predate the last changes (a crash after a rule
                # change and before the next checkpoint); the rule book is the truth.
                self.push_rules()

    #: Name of the job in logs and checkpoints.
    job_name = "fraudstream demo"

    def _build_job(self, env: StreamExecutionEnvironment) -> None:
        """Declare the job: generator -> rules job (rules from the queue) -> the web's sinks."""
        self._rules_queue = QueueSource()
        transactions = env.from_source(
            self.generator, WatermarkStrategy.no_watermarks(), "transactions"
        ).uid("transactions")
        rules = env.from_source(self._rules_queue, WatermarkStrategy.no_watermarks(), "rules").uid(
            "rules"
        )
        parallel = self.workers > 1
        if parallel:
            # Its speed is set from the web thread: it runs in this process, read by one
            # instance; only the windows are spread over the worker processes.
            self.generator.in_process = True
            transactions = transactions.set_parallelism(1)
        streams = build_rules_job(
            transactions,
            rules,
            initial_rules=self.rulebook.list(),
            out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
            fork_parallelism=1 if parallel else None,
        )
        transactions.sink_to(CallbackSink(self._on_transactions)).uid("ui-transactions")
        streams.alerts.sink_to(CallbackSink(self._on_alerts)).uid("ui-alerts").set_parallelism(1)
        streams.latency.sink_to(CallbackSink(self._on_latency)).uid("ui-latency").set_parallelism(1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the job (after a final checkpoint when checkpointing is on) and wait for it."""
        with self._lock:
            client, self._client = self._client, None
            if self._rules_queue is not None:
                self._rules_queue.close()
        if client is None:
            return
        if self._checkpoint_dir() is not None:
            completed = client.stop_with_savepoint()
        else:
            completed = client.cancel()
        try:
            completed.result(timeout)
        except TimeoutError:
            log.warning("the rules job did not stop within %.0f s", timeout)

    def close(self) -> None:
        """Stop the job and close the rule book and the alert store (once)."""
        self.stop()
        if self._closed:
            return
        self._closed = True
        for store in (self.rulebook, self.alert_store):
            close = getattr(store, "close", None)
            if close is not None:
                close()

    def job_status(self) -> str:
        """``RUNNING``, ``FINISHED``, ``FAILED``, ``CANCELED`` or ``NOT_STARTED``."""
        client = self._client
        return client.get_job_status() if client is not None else "NOT_STARTED"

    # -- engine thread callbacks ----------------------------------------------------------------
    def _on_transactions(self, batch: Sequence[Transaction]) -> None:
        self.events.add(len(batch))
        self.recent.extend(batch)
        self.transactions_hub.publish_many(batch)

    def _on_alerts(self, batch: Sequence[Any]) -> None:
        self._on_alert_dicts([alert.to_json_dict() for alert in batch])

    def _on_alert_dicts(self, dicts: Sequence[dict[str, Any]]) -> None:
        # Fractional milliseconds: the event's stamp is whole milliseconds, so a latency is
        # at most 1 ms over the truth, never under (whole ms at both ends: +-1 ms).
        now_ms = time.time_ns() / 1_000_000
        self.alert_store.add_many(dicts)
        self.alerts.add(len(dicts))
        self.alert_latency.add_many(
            now_ms - int(d["triggeringEvent"]["ingestionTimestamp"]) for d in dicts
        )
        self.alerts_hub.publish_many(dicts)

    def _on_latency(self, batch: Sequence[Any]) -> None:
        values = [float(v) for v in batch]
        self.latency.add_many(values)
        self._chart_latency.add_many(values)

    # -- rules -----------------------------------------------------------------------------------
    def _push(self, rule: Rule) -> None:
        queue = self._rules_queue
        if queue is not None:
            queue.put(rule)

    def list_rules(self) -> list[Rule]:
        """Every rule, by id."""
        with self._lock:
            return self.rulebook.list()

    def get_rule(self, rule_id: int) -> Rule:
        """One rule; :class:`RuleNotFoundError` when absent."""
        with self._lock:
            rule = self.rulebook.get(rule_id)
        if rule is None:
            raise RuleNotFoundError(rule_id)
        return rule

    def add_rule(self, obj: Mapping[str, Any] | str | bytes, actor: str = _ACTOR_DEFAULT) -> Rule:
        """Validate, version and store a rule, then hand it to the job.

        Control rules (``ruleState`` CONTROL) go to the job only. A refused rule raises
        :class:`RuleValidationError` and changes nothing.
        """
        rule = parse_rule(obj)
        if rule.to_json_dict()["ruleState"] == "CONTROL":
            self._push(rule)
            return rule
        with self._lock:
            stored = self.rulebook.upsert(obj, actor)
            self._push(stored)
        return stored

    def set_rule_state(self, rule_id: int, state: str, actor: str = _ACTOR_DEFAULT) -> Rule:
        """Pause (``PAUSE``) or resume (``ACTIVE``) a rule."""
        with self._lock:
            self.get_rule(rule_id)
            rule = self.rulebook.set_state(rule_id, state, actor)
            if rule is None:
                raise RuleNotFoundError(rule_id)
            self._push(rule)
        return rule

    def delete_rule(self, rule_id: int, actor: str = _ACTOR_DEFAULT) -> Rule:
        """Delete a rule from the book and from the job."""
        with self._lock:
            rule = self.get_rule(rule_id)
            self.rulebook.delete(rule_id, actor)
            self._push(parse_rule({**rule.to_json_dict(), "ruleState": "DELETE"}))
        return rule

    def delete_all_rules(self, actor: str = _ACTOR_DEFAULT) -> int:
        """Delete every rule; returns how many there were."""
        with self._lock:
            count = len(self.rulebook.list())
            self.rulebook.delete_all(actor)
            self._push(self._control("DELETE_RULES_ALL"))
        return count

    def rule_versions(self, rule_id: int) -> list[Rule]:
        """Every version of a rule, oldest first."""
        with self._lock:
            self.get_rule(rule_id)
            return list(self.rulebook.versions(rule_id))

    def audit(self, limit: int = 50, offset: int = 0) -> list[Any]:
        """The audit log, newest first."""
        with self._lock:
            return list(self.rulebook.audit(limit, offset))

    def push_rules(self) -> int:
        """Send the whole current rule set to the job again; returns how many rules."""
        with self._lock:
            rules = self.rulebook.list()
            for rule in rules:
                self._push(rule)
        return len(rules)

    @staticmethod
    def _control(control_type: str) -> Rule:
        return parse_rule({"ruleId": 0, "ruleState": "CONTROL", "controlType": control_type})

    def clear_state(self) -> None:
        """Forget every rule's window state in the job (``CLEAR_STATE_ALL``)."""
        self._push(self._control("CLEAR_STATE_ALL"))

    # -- generator -------------------------------------------------------------------------------
    def start_generation(self) -> dict[str, Any]:
        """Resume the generator."""
        with self._lock:
            self._generating = True
            if self._speed > 0:
                self.generator.resume()
        return self.generator_status()

    def stop_generation(self) -> dict[str, Any]:
        """Pause the generator."""
        with self._lock:
            self._generating = False
            self.generator.pause()
        return self.generator_status()

    def set_speed(self, speed: float) -> dict[str, Any]:
        """Set the generator's speed (transactions per second; 0 holds it)."""
        if not 0 <= speed <= MAX_SPEED:
            raise ConfigurationError(f"speed {speed!r} must be between 0 and {MAX_SPEED:g}")
        with self._lock:
            self._speed = float(speed)
            if speed == 0:
                self.generator.pause()
            else:
                self.generator.set_rate(float(speed))
                if self._generating:
                    self.generator.resume()
        return self.generator_status()

    def generator_status(self) -> dict[str, Any]:
        """Speed setting, whether it runs, and the measured rate."""
        return {
            "running": self._generating and self._speed > 0,
            "generating": self._generating,
            "speed": self._speed,
            "maxSpeed": MAX_SPEED,
            "eventsPerSecond": round(self.events.per_second(), 1),
            "emitted": self.events.total,
        }

    # -- alerts and backtests -------------------------------------------------------------------
    def alert_history(
        self,
        *,
        rule_id: int | None = None,
        key: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> dict[str, Any]:
        """One page of stored alerts, newest first."""
        page = self.alert_store.query(
            rule_id=rule_id,
            key=key,
            since_ms=since_ms,
            until_ms=until_ms,
            limit=limit,
            before=before,
        )
        return {
            "items": [exact_ids(dict(item)) for item in page.items],
            "nextBefore": page.next_before,
            "total": self.alert_store.count(
                rule_id=rule_id, key=key, since_ms=since_ms, until_ms=until_ms
            ),
        }

    def backtest(self, obj: Mapping[str, Any], max_alerts: int = 100) -> dict[str, Any]:
        """Run a draft rule over the recent transactions without activating it.

        The draft runs as its own bounded rules job on the embedded engine, over a copy
        of the ring of recent transactions, with the draft as its only (ACTIVE) rule.
        """
        rule = parse_rule(obj)
        if rule.to_json_dict()["ruleState"] == "CONTROL":
            raise RuleValidationError({"ruleState": "a control command cannot be backtested"})
        draft = parse_rule({**rule.to_json_dict(), "ruleState": "ACTIVE"})
        history = list(self.recent)
        env = StreamExecutionEnvironment.get_execution_environment()
        streams = build_rules_job(
            env.from_collection(history),
            env.from_collection([]),
            initial_rules=[draft],
            out_of_orderness_ms=OUT_OF_ORDERNESS_MS,
        )
        count = 0
        kept: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        with streams.alerts.execute_and_collect("backtest") as alerts:
            for alert in alerts:
                count += 1
                kept.append(exact_ids(alert.to_json_dict()))
        return {
            "rule": rule_view(rule),
            "transactions": len(history),
            "alertCount": count,
            "alerts": list(kept),
        }

    # -- measurements ----------------------------------------------------------------------------
    def latency_point(self) -> dict[str, Any] | None:
        """One point of the latency chart (p50/p99 of the latencies since the last point)."""
        values = sorted(self._chart_latency.drain())
        if not values:
            return None
        return {
            "t": time.time_ns() // 1_000_000,
            "p50": nearest_rank(values, 0.5),
            "p99": nearest_rank(values, 0.99),
            "count": len(values),
        }

    def newest_snapshot(self) -> Path | None:
        """The newest complete checkpoint or savepoint (the final one taken at stop)."""
        directory = self._checkpoint_dir()
        if directory is None or not directory.is_dir():
            return None
        candidates = [
            path
            for folder in (directory, directory / "savepoints")
            if folder.is_dir()
            for path in folder.iterdir()
            if path.name.startswith(_SNAPSHOTS) and (path / "_metadata").is_file()
        ]
        return max(candidates, key=lambda p: p.stat().st_mtime, default=None)

    def checkpoint_age_s(self) -> float | None:
        """Seconds since the newest completed checkpoint or savepoint, if any."""
        newest = self.newest_snapshot()
        return time.time() - newest.stat().st_mtime if newest is not None else None

    def health(self) -> dict[str, Any]:
        """What ``/api/health`` reports."""
        status = self.job_status()
        return {
            "status": "ok" if status == "RUNNING" else "degraded",
            "job": status,
            "rules": len(self.list_rules()),
            "alertsStored": self.alert_store.count(),
            "generator": self.generator_status(),
            "alertsPerSecond": round(self.alerts.per_second(), 1),
            "deadLetters": self.dead_letters.total,
            "clients": {hub.name: hub.subscriber_count for hub in self.hubs()},
            "dropped": {hub.name: hub.dropped for hub in self.hubs()},
        }

    def hubs(self) -> list[Hub]:
        """The WebSocket hubs."""
        return [self.transactions_hub, self.alerts_hub, self.latency_hub]

    def metric_samples(self) -> list[MetricSample]:
        """Everything ``/metrics`` exposes."""
        return demo_metric_samples(self)
