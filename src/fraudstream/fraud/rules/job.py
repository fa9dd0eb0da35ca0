"""The rules job, built on any ``StreamExecutionEnvironment`` through the public API.

::

    transactions ─▶ DynamicKeyFunction ─key_by(grouping, values)─▶ DynamicAlertFunction ─▶ alerts
                      ▲ (broadcast rules)                            ▲ (broadcast rules)
    rules ────────────┴──────────────────────────────────────────────┘

Side outputs: latency (ms per evaluated fork), late transactions, the current rules
(on EXPORT_RULES_CURRENT) and the alerts of SHADOW rules.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fraudstream.common.time import Duration
from fraudstream.common.watermark_strategy import (
    MAX_WATERMARK,
    TimestampAssigner,
    WatermarkStrategy,
)
from fraudstream.exceptions import ConfigurationError, RuleValidationError
from fraudstream.fraud.rules.functions import (
    CURRENT_RULES_TAG,
    LATE_TAG,
    LATENCY_TAG,
    RULES_DESCRIPTOR,
    RULES_META_DESCRIPTOR,
    SHADOW_TAG,
    DynamicAlertFunction,
    DynamicKeyFunction,
)
from fraudstream.fraud.rules.model import Rule, parse_rule

__all__ = ["RulesJobStreams", "TransactionEventTime", "build_rules_job", "cli_job"]

log = logging.getLogger("fraudstream.rules")

_EVENT_TIME = operator.itemgetter(1)


@dataclass
class RulesJobStreams:
    """The streams of a rules job.

    Attributes:
        alerts: :class:`~fraudstream.fraud.rules.alert.RuleAlert` of ACTIVE rules.
        shadow: alerts of SHADOW rules (``shadow=True``), never published as live alerts.
        latency: milliseconds from a transaction's ingestion to its evaluation.
        current_rules: the rules in force, each time EXPORT_RULES_CURRENT arrives.
        late: transactions that arrived behind the watermark (not evaluated).
    """

    alerts: Any
    shadow: Any
    latency: Any
    current_rules: Any
    late: Any


class TransactionEventTime(TimestampAssigner):
    """A transaction's ``eventTime``."""

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        """The event time of the transaction."""
        return int(value[1])

    def extract_timestamp_batch(self, values: list[Any]) -> list[int]:
        """The event times of a batch (the embedded engine's batch hook): in C, no call each."""
        return list(map(int, map(_EVENT_TIME, values)))


class _EndOfTime(TimestampAssigner):
    """Stamps rules at the end of time, so the rules stream never holds event time back."""

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return MAX_WATERMARK - 1


def build_rules_job(
    transactions: Any,
    rules: Any,
    *,
    initial_rules: Iterable[Rule] = (),
    out_of_orderness_ms: int | None = None,
    rules_hold_back_time: bool = False,
    latency: bool = True,
    fork_parallelism: int | None = None,
) -> RulesJobStreams:
    """Evaluate dynamic rules over transactions.

    Args:
        transactions: a ``DataStream`` of :class:`~fraudstream.fraud.transaction.Transaction`.
        rules: a ``DataStream`` of :class:`~fraudstream.fraud.rules.model.Rule` (changes and
            control commands), broadcast to every parallel instance.
        initial_rules: rules in force before the first transaction (the current rule set
            from a file or the rule book); the rules stream then changes them.
        out_of_orderness_ms: when given, stamp transactions with their ``eventTime`` and
            generate bounded-out-of-orderness watermarks here; otherwise ``transactions``
            must carry their own timestamps and watermarks (state is cleaned up, and late
            events detected, only as the watermark advances).
        rules_hold_back_time: keep the rules stream's own watermarks (for a rules stream
            split from the same source as the transactions). By default the rules stream
            is stamped at the end of time and marked idle when quiet, so an empty or quiet
            rules topic never stalls event time.
        latency: emit the latency side output.
        fork_parallelism: the parallelism of the ``DynamicKeyFunction`` (the job's by
            default). A window holds the events of its key *that have arrived so far*
            (DESIGN.md §2), so alerts depend on the order in which a key's events arrive:
            with the transactions source and this function at parallelism 1, every key
            sees its events in the source's order whatever the parallelism of the alert
            function, and the alerts equal a parallelism-1 run's.
    """
    seeded = [parse_rule(r) for r in initial_rules]
    if out_of_orderness_ms is not None:
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(
            Duration.of_millis(out_of_orderness_ms)
        ).with_timestamp_assigner(TransactionEventTime())
        transactions = transactions.assign_timestamps_and_watermarks(strategy)
    if not rules_hold_back_time:
        neutral = (
            WatermarkStrategy.for_monotonous_timestamps()
            .with_timestamp_assigner(_EndOfTime())
            .with_idleness(Duration.of_millis(1))
        )
        rules = rules.assign_timestamps_and_watermarks(neutral)
    broadcast = rules.broadcast(RULES_DESCRIPTOR, RULES_META_DESCRIPTOR)
    forked = (
        transactions.connect(broadcast)
        .process(DynamicKeyFunction(seeded))
        .name("dynamic-key")
        .uid("rules-dynamic-key")
    )
    if fork_parallelism is not None:
        forked = forked.set_parallelism(fork_parallelism)
    alerts = (
        forked.key_by(operator.itemgetter(0))
        .connect(broadcast)
        .process(DynamicAlertFunction(seeded, latency=latency))
        .name("dynamic-alert")
        .uid("rules-dynamic-alert")
    )
    return RulesJobStreams(
        alerts=alerts,
        shadow=alerts.get_side_output(SHADOW_TAG),
        latency=alerts.get_side_output(LATENCY_TAG),
        current_rules=forked.get_side_output(CURRENT_RULES_TAG),
        late=forked.get_side_output(LATE_TAG),
    )


def _rules_or_nothing(value: Any) -> Iterator[Rule]:
    """A rule record from a rules topic or file; refused ones are logged and skipped."""
    try:
        yield parse_rule(value)
    except RuleValidationError as exc:
        log.warning("refused a rule from the rules stream: %s", exc)


def load_rules_file(path: str) -> list[Rule]:
    """Rules from a JSON array, JSON-lines or CSV-lines file (all validated or none)."""
    from pathlib import Path

    from fraudstream.fraud.rules.model import parse_rules

    return parse_rules(Path(path).read_bytes())


def cli_job(env: Any, options: Any) -> Any:
    """``fraudstream job rules``: rules over ``--source`` transactions.

    ``--rules`` is a rules file (JSON array, JSON lines or CSV lines; its rules are in
    force from the start), ``sqlite:PATH`` (a rule book: its current rules are in force
    from the start, and its later changes follow when the transactions are unbounded or
    with ``follow=yes``; ``poll-ms=N`` sets how often it is read), or a connector spec
    whose records are rules (JSON); without it the demo's four rules are in force.

    With ``-p N`` (in one process or in worker processes) the transactions and the rules
    are read, stamped and forked by one instance each, in their sources' order, and only
    the windows are spread over the N instances: the alerts equal a one-instance run's.
    """
    from fraudstream.connectors.specs import make_source

    source = make_source(options.source, "transactions")
    transactions = env.from_source(source, WatermarkStrategy.no_watermarks(), "transactions").uid(
        "transactions"
    )
    # Alerts must not depend on the parallelism: read and fork transactions in one
    # instance (cheap), spread the windows (the work) over all of them.
    parallel = getattr(options, "parallelism", 1) > 1
    if parallel:
        transactions = transactions.set_parallelism(1)
    initial, rules = _cli_rules(env, getattr(options, "rules", None), source.bounded)
    out_of_orderness = getattr(options, "out_of_orderness_ms", None)
    streams = build_rules_job(
        transactions,
        rules,
        initial_rules=initial,
        out_of_orderness_ms=5000 if out_of_orderness is None else out_of_orderness,
        fork_parallelism=1 if parallel else None,
    )
    return streams.alerts


def _cli_rules(env: Any, spec: str | None, bounded: bool) -> tuple[Sequence[Rule], Any]:
    """The rules in force at the start and the stream of rule changes, for ``--rules``."""
    from pathlib import Path

    from fraudstream.connectors.specs import make_source, parse_spec
    from fraudstream.fraud.rules.model import DEMO_RULES

    if spec is None:
        return [parse_rule(r) for r in DEMO_RULES], env.from_collection([], type_info=None)
    if spec.strip().lower().startswith("sqlite:"):
        return _rule_book(env, parse_spec(spec), bounded)
    if Path(spec).is_file():
        try:
            initial = load_rules_file(spec)
        except RuleValidationError as exc:
            raise ConfigurationError(f"--rules {spec}: {exc}") from exc
        return initial, env.from_collection([], type_info=None)
    rules_source = make_source(spec, "rules")
    # One reader and one parser: rule changes reach every instance in the source's order.
    rules = (
        env.from_source(rules_source, WatermarkStrategy.no_watermarks(), "rules")
        .uid("rules")
        .set_parallelism(1)
        .flat_map(_rules_or_nothing)
        .set_parallelism(1)
    )
    return [], rules


def _rule_book(env: Any, spec: Any, bounded: bool) -> tuple[Sequence[Rule], Any]:
    """``--rules sqlite:PATH[,follow=yes|no][,poll-ms=N]``: start from a rule book."""
    from fraudstream.fraud.rules.booksource import RuleBookSource, read_rule_book

    if not spec.target:
        raise ConfigurationError(f"--rules {spec.text!r}: give the rule book's path")
    unknown = set(spec.options) - {"follow", "poll-ms"}
    if unknown:
        raise ConfigurationError(
            f"--rules {spec.text!r}: unknown option(s) {', '.join(sorted(unknown))}; "
            "known: follow, poll-ms"
        )
    follow_text = spec.option("follow", "no" if bounded else "yes").lower()
    if follow_text not in ("yes", "no", "true", "false", "1", "0"):
        raise ConfigurationError(
            f"--rules {spec.text!r}: follow={follow_text!r}; expected yes or no"
        )
    poll_ms = spec.int_option("poll-ms", 500, minimum=1)
    snapshot = read_rule_book(spec.target)
    source = RuleBookSource(
        spec.target,
        snapshot.version,
        poll_ms=poll_ms,
        follow=follow_text in ("yes", "true", "1"),
    )
    rules = (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "rule-book")
        .uid("rules")
        .flat_map(_rules_or_nothing)
        .set_parallelism(1)
    )
    return snapshot.rules, rules
