"""The conformance corpus: each program, the features it covers, and how the engines compare.

The compatibility table (``docs/flink-compatibility.md``) is rendered from this list by
``make_table.py``; ``tests/test_conformance.py`` runs every case on both engines and
checks that the declared outcome is what happens. A difference is only ever listed here
together with a ``pin``: a check of exactly how the two outputs differ.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance.runner import PROGRAMS, SHARED, Run, same_output

Pin = Callable[[list[str], list[str]], bool]


class Outcome(enum.Enum):
    """How fraudstream's run of a program compares with Flink's."""

    SAME = "same output"
    DIFFERS = "differs (pinned)"
    NOT_SUPPORTED = "not supported"
    FRAUDSTREAM_ONLY = "fraudstream only"


@dataclass(frozen=True)
class Case:
    """One program of the corpus."""

    name: str
    program: str
    features: tuple[str, ...]
    outcome: Outcome = Outcome.SAME
    note: str = ""
    #: For DIFFERS: (our lines, Flink's lines) -> whether they differ exactly as noted.
    pin: Pin | None = None
    #: For FRAUDSTREAM_ONLY: text Flink's error output must contain.
    flink_error: str = ""
    args: tuple[str, ...] = field(default=())

    def path(self) -> Path:
        """Where the program is: ``shared:...`` is the shared fixtures folder."""
        if self.program.startswith("shared:"):
            return SHARED / self.program.removeprefix("shared:")
        return PROGRAMS / self.program

    def verdict(self, ours: Run, theirs: Run) -> str | None:
        """``None`` when the runs match the declared outcome, else what went wrong."""
        if self.outcome is Outcome.NOT_SUPPORTED:
            if theirs.returncode != 0 or not theirs.lines:
                return "Flink should run it: " + theirs.explain()
            if ours.returncode == 0 or "not supported" not in ours.stderr or ours.stdout:
                return "fraudstream should refuse it at once: " + ours.explain()
            return None
        if ours.returncode != 0 or not ours.lines:
            return ours.explain()
        if self.outcome is Outcome.FRAUDSTREAM_ONLY:
            if theirs.returncode == 0 or self.flink_error not in theirs.stderr:
                return f"Flink should fail with {self.flink_error!r}: " + theirs.explain()
            return None
        if theirs.returncode != 0 or not theirs.lines:
            return theirs.explain()
        if self.outcome is Outcome.SAME:
            if same_output(ours.lines, theirs.lines):
                return None
            return f"outputs differ:\n-- fraudstream\n{ours.stdout}\n-- flink\n{theirs.stdout}"
        assert self.pin is not None, f"{self.name}: a difference needs a pin"
        if same_output(ours.lines, theirs.lines):
            return "the outputs are now the same: declare the case SAME"
        if self.pin(ours.lines, theirs.lines):
            return None
        return (
            f"not the pinned difference:\n-- fraudstream\n{ours.stdout}\n-- flink\n{theirs.stdout}"
        )


def _min_long_timestamps(ours: list[str], theirs: list[str]) -> bool:
    """Flink's lines are ours with ``ts=None`` read as ``ts=-9223372036854775808``."""
    return sorted(line.replace("ts=None", f"ts={-(2**63)}") for line in ours) == sorted(theirs)


CASES: Sequence[Case] = (
    Case(
        "tutorial fixture",
        "shared:fixtures/pyflink_tutorial_fraud_detection.py",
        (
            "the DataStream tutorial's program, unchanged",
            "`KeyedProcessFunction` with `ValueState`",
            "`from_collection` with `Types.TUPLE`, `key_by` with a lambda, `print`",
        ),
    ),
    Case(
        "tutorial timer variant",
        "tutorial_timer.py",
        (
            "processing-time timers: `register_processing_time_timer`, "
            "`delete_processing_time_timer`, `current_processing_time`",
        ),
    ),
    Case(
        "event time",
        "event_time.py",
        (
            "`WatermarkStrategy.for_bounded_out_of_orderness` with a `TimestampAssigner`",
            "event-time timers, `ctx.timestamp()`, `ctx.time_domain()`, `get_current_key()`",
            "timers firing at the end of a bounded input",
        ),
    ),
    Case(
        "union and connect",
        "union_connect.py",
        (
            "`union` of several streams and of a stream with itself",
            "`connect` with `CoMapFunction`, `CoFlatMapFunction`, `CoProcessFunction`",
            "keyed `connect` with `KeyedCoProcessFunction`",
        ),
    ),
    Case(
        "side outputs",
        "side_outputs.py",
        (
            "side outputs (`OutputTag`, `yield tag, value`, `get_side_output`) "
            "from `ProcessFunction` and `KeyedProcessFunction`",
        ),
    ),
    Case(
        "broadcast state",
        "broadcast_state.py",
        (
            "`broadcast(MapStateDescriptor)` connected to a keyed stream, "
            "`KeyedBroadcastProcessFunction`",
            "broadcast state read-write in `process_broadcast_element`, "
            "read-only in `process_element` and `on_timer`",
        ),
    ),
    Case(
        "state kinds",
        "state_kinds.py",
        (
            "`ValueState`, `ListState`, `MapState`, `ReducingState`, `AggregatingState` "
            "(with an `AggregateFunction`), `clear()` of each",
        ),
    ),
    Case(
        "keyed aggregations",
        "keyed_aggregations.py",
        (
            "`KeyedStream.reduce` with a lambda and a `ReduceFunction`",
            "`sum`, `min`, `max`, `min_by`, `max_by` by tuple position",
        ),
    ),
    Case(
        "transforms",
        "transforms.py",
        (
            "`map`, `flat_map`, `filter`, `process` with function classes and lambdas",
            "`Row` with `Types.ROW_NAMED` field names, `KeySelector` classes",
            "parallelism 2 with keyed state, `print().set_parallelism(1)`",
            "`execute_and_collect()`, `RuntimeContext.get_number_of_parallel_subtasks()`",
        ),
    ),
    Case(
        "rules job",
        "rules_job.py",
        (
            "the dynamic rules job (`fraudstream.fraud.rules.build_rules_job`) with the demo's "
            "rules over a generated file: broadcast rules, dynamic keys, keyed windows in "
            "state, event-time timers, side outputs",
            "job code shared by both engines through the reverse alias (`fraudstream.flink`)",
        ),
    ),
    Case(
        "timestamp of a record without one",
        "no_timestamp.py",
        ("`ctx.timestamp()` of a record that has no timestamp",),
        Outcome.DIFFERS,
        "fraudstream returns `None` (as Java Flink's `Context.timestamp()` returns null); "
        "PyFlink returns `-9223372036854775808` (Java's `Long.MIN_VALUE`). Test with "
        "`ctx.timestamp() is None or ctx.timestamp() < 0` to be portable.",
        pin=_min_long_timestamps,
    ),
    Case(
        "apply_to_keyed_state",
        "broadcast_apply_to_keyed_state.py",
        ("`Context.apply_to_keyed_state` in `KeyedBroadcastProcessFunction`",),
        Outcome.FRAUDSTREAM_ONLY,
        "PyFlink 2.3 does not offer it to Python functions (Java Flink does); on Flink the "
        "call raises `AttributeError`.",
        flink_error="has no attribute 'apply_to_keyed_state'",
    ),
    Case(
        "windows",
        "windows.py",
        ("`window(...)`: window assigners, triggers, window functions",),
        Outcome.NOT_SUPPORTED,
        "fraudstream refuses `pyflink.datastream.window` at import, naming it; write "
        "windows as a `KeyedProcessFunction` with state and timers (as the rules engine does).",
    ),
)

#: PyFlink features outside the corpus that fraudstream does not offer (refused at import
#: with an error naming them; ``tests/test_tutorial_program.py`` pins the mechanism).
NOT_COVERED: Sequence[tuple[str, str]] = (
    ("Table API and SQL (`pyflink.table`)", "out of scope: the DataStream API only"),
    ("`pyflink.datastream.formats`", "use `fraudstream.connectors.codecs`"),
    (
        "Flink's Java connectors (Kafka, files) in `pyflink.datastream.connectors`",
        "use fraudstream's connectors (`from_source` with `fraudstream.connectors`); on Flink, "
        "Flink's own connectors (see docs/flink-deployment.md)",
    ),
    ("metric groups (`pyflink.metrics`)", "the service exposes metrics instead"),
    ("the Java gateway, `pyflink.util`, Beam internals", "there is no JVM"),
)

#: Behaviour that no engine defines, so the corpus is written not to depend on it.
NOT_COMPARED: Sequence[tuple[str, str]] = (
    (
        "when watermarks are emitted",
        "Flink emits periodic watermarks every 200 ms of wall time, so which records are late "
        "and what a timer sees of later records varies from run to run on Flink itself. The "
        "corpus keeps disorder within the watermark bound and lets a timer at T read only "
        "what records up to T wrote; fraudstream's own tests pin its watermark and lateness "
        "rules with a manual clock.",
    ),
    (
        "processing-time timers firing",
        "they follow the wall clock; the corpus registers and deletes them but finishes "
        "before any fires. fraudstream's tests drive them with `ManualClock`.",
    ),
    (
        "order between keys, between the inputs of `union`/`connect`, between subtasks",
        "not defined by Flink; outputs are compared as multisets, and in order per key.",
    ),
    (
        "`MapState` iteration order",
        "not defined by Flink; the corpus prints map state sorted.",
    ),
)
