"""Runs inside the Flink interpreter: build a fraud job on PyFlink and run it locally.

    python -m fraudstream.flink.driver '{"name": "rules", "source": "...", ...}'

(started by :func:`fraudstream.flink.run_job_on_flink`, which sets up ``PYTHONPATH``).

Steps:

1. Read the bounded input (``--source``, and ``--rules`` when it is a connector) here in
   the driver with fraudstream's connectors (the embedded API, alias off), to hand it
   to Flink as a collection; create the alerts' sink writer. Unbounded inputs need
   Flink's own connectors on a cluster
   (docs/flink-deployment.md).
2. Install the reverse alias, so that job code imports PyFlink's API.
3. Build the job with the same builder functions the embedded engine uses.
4. Run it on a local mini cluster, collect the alerts back here and write them with
   fraudstream's sinks (``print``, ``jsonl:``, ``sqlite:``, ``kafka://``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fraudstream.flink.reverse_alias import use_embedded, use_pyflink

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
BATCH = 1000


def read_bounded(spec: str, role: str) -> list[Any]:
    """Every record of a bounded fraudstream source; bad records go to stderr."""
    from fraudstream.connectors.base import ReaderContext
    from fraudstream.connectors.specs import make_source
    from fraudstream.exceptions import ConfigurationError

    source = make_source(spec, role)
    if not getattr(source, "bounded", True):
        raise ConfigurationError(
            f"{spec!r} never ends; the local Flink runner reads bounded inputs only "
            "(generator with count=N, jsonl:, csv:). For Kafka on Flink, see "
            "docs/flink-deployment.md"
        )

    def refuse(letter: Any) -> None:
        print(f"dead letter ({letter.position}): {letter.reason}", file=sys.stderr)

    reader = source.create_reader(0, 1)
    reader.open(ReaderContext(dead_letter=refuse))
    records: list[Any] = []
    try:
        while (batch := reader.poll(BATCH)) is not None:
            records.extend(batch)
    finally:
        reader.close()
    return records


def _collection(env: Any, records: list[Any]) -> Any:
    """A stream of ``records``; Flink refuses an empty collection, so filter one away."""
    if records:
        return env.from_collection(records)
    return env.from_collection([0]).filter(lambda _: False)


def _tutorial(timer: bool) -> Callable[[Any, Any, Any], Any]:
    def build(env: Any, transactions: Any, options: Any) -> Any:
        from fraudstream.fraud.tutorial import build_tutorial_job

        tuples = transactions.map(lambda t: (t.payee_id, t.event_time, t.payment_amount))
        return build_tutorial_job(tuples, timer=timer)

    return build


def _rules(env: Any, transactions: Any, options: Any) -> Any:
    from fraudstream.fraud.rules.job import _rules_or_nothing, build_rules_job, load_rules_file
    from fraudstream.fraud.rules.model import DEMO_RULES, parse_rule

    spec = options.rules
    changes: list[Any] = []
    if spec is None:
        initial = [parse_rule(r) for r in DEMO_RULES]
    elif Path(spec).is_file():
        initial = load_rules_file(spec)
    else:
        initial = []
        changes = [r for raw in options.rule_records for r in _rules_or_nothing(raw)]
    streams = build_rules_job(
        transactions, _collection(env, changes), initial_rules=initial, out_of_orderness_ms=5000
    )
    return streams.alerts


BUILDERS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "tutorial": _tutorial(timer=False),
    "tutorial-timer": _tutorial(timer=True),
    "rules": _rules,
}


def _writer(sink_spec: str) -> Any:
    """A fraudstream sink writer for the alerts, or ``None`` for ``print``."""
    if sink_spec == "print":
        return None
    from fraudstream.connectors.specs import make_sink

    return make_sink(sink_spec, "alerts").create_writer(0, 1)


def _write(alerts: Iterator[Any], writer: Any) -> int:
    """Write collected alerts (with a fraudstream writer, or print them); returns how many."""
    if writer is None:
        count = 0
        for alert in alerts:
            print(alert, flush=False)
            count += 1
        sys.stdout.flush()
        return count
    from fraudstream.connectors.base import WriterContext

    writer.open(WriterContext())
    count = 0
    try:
        batch: list[Any] = []
        for alert in alerts:
            batch.append(alert)
            if len(batch) >= BATCH:
                writer.write(batch)
                count += len(batch)
                batch = []
        if batch:
            writer.write(batch)
            count += len(batch)
        committable = writer.prepare_commit(2**62)
        if committable is not None:
            writer.commit([committable])
        writer.flush()
    finally:
        writer.close()
    return count


def run(options: Any) -> int:
    """Build and run the job described by ``options`` on a local Flink mini cluster."""
    # 1. Inputs first, with fraudstream's own connectors (embedded API): a bad spec or
    #    file fails in a second, before the JVM starts.
    use_embedded()
    # Records cross the switch as plain tuples and rules as wire dicts: their classes
    # are imported again after it (pickle insists on the current class).
    records = [tuple(t) for t in read_bounded(options.source, "transactions")]
    rules = options.rules
    options.rule_records = (
        []
        if rules is None or Path(rules).is_file()
        else [rule.to_json_dict() for rule in read_bounded(rules, "rules")]
    )
    writer = _writer(options.sink)
    # 2. From here on, job code builds on PyFlink.
    use_pyflink()
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.transaction import Transaction

    records = [Transaction(*t) for t in records]

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(options.parallelism)
    env.set_max_parallelism(options.max_parallelism)
    if options.checkpoint_dir:
        env.enable_checkpointing(options.checkpoint_interval)
        storage = Path(options.checkpoint_dir).resolve().as_uri()
        env.get_checkpoint_config().set_checkpoint_storage_dir(storage)
    transactions = _collection(env, records)
    alerts = BUILDERS[options.name](env, transactions, options)
    with alerts.execute_and_collect(f"fraudstream job {options.name}") as results:
        _write(results, writer)
    return EXIT_OK


def _root_cause(exc: BaseException) -> str:
    """The Python error inside a Flink job failure (Java wraps it in several layers)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    python_errors = [
        line
        for line in lines
        if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line) and not line.startswith("java")
    ]
    if python_errors:
        return python_errors[-1]
    return next((line for line in lines if line), type(exc).__name__)


def main(argv: list[str]) -> int:
    """Entry point: one JSON argument with the job's options."""
    from fraudstream.exceptions import FraudstreamError

    if len(argv) != 1:
        print("usage: python -m fraudstream.flink.driver OPTIONS_JSON", file=sys.stderr)
        return EXIT_USAGE
    options = SimpleNamespace(**json.loads(argv[0]))
    if options.name not in BUILDERS:
        print(f"fraudstream: unknown job {options.name!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(options)
    except FraudstreamError as exc:
        print(f"fraudstream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"fraudstream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a failed Flink job arrives as a Py4J error with the Java trace
        print(f"fraudstream: the job failed on Flink: {_root_cause(exc)}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
