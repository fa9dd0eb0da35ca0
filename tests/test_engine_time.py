"""Timers and watermarks follow Flink's documented semantics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fraudstream.common import Duration, Types, WatermarkStrategy
from fraudstream.common.watermark_strategy import TimestampAssigner
from fraudstream.datastream import (
    KeyedProcessFunction,
    RuntimeContext,
    StreamExecutionEnvironment,
    TimeDomain,
    ValueStateDescriptor,
)
from fraudstream.testing import (
    AdvanceProcessingTime,
    CapturingSink,
    ManualClock,
    ScriptedSource,
    Timestamped,
    Watermark,
)


class SecondField(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[1])


class TimerEcho(KeyedProcessFunction):
    """Registers an event-time timer at the record's timestamp + offset; reports firings."""

    def __init__(self, offset: int = 10) -> None:
        self.offset = offset

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        ctx.timer_service().register_event_time_timer(value[1] + self.offset)
        yield ("element", value[0], ctx.timestamp(), ctx.timer_service().current_watermark())

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        yield ("timer", ctx.get_current_key(), timestamp, ctx.time_domain(), ctx.timestamp())


def run_script(script: list[Any], function: Any, clock: ManualClock | None = None) -> list[Any]:
    env = StreamExecutionEnvironment.get_execution_environment()
    clock = clock or ManualClock(0)
    env.set_processing_time_clock(clock)
    sink = CapturingSink()
    source = ScriptedSource(script, clock)
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "script")
        .key_by(lambda v: v[0])
        .process(function)
        .sink_to(sink)
    )
    env.execute()
    return sink.results


def test_event_timers_fire_in_timestamp_order_when_the_watermark_passes() -> None:
    script = [
        Timestamped(("b", 30), 30),
        Timestamped(("a", 10), 10),
        Timestamped(("c", 20), 20),
        Watermark(25),
        Timestamped(("a", 100), 100),
    ]
    out = run_script(script, TimerEcho())
    timers = [o for o in out if o[0] == "timer"]
    # The watermark 25 fires a@20 only; the rest fire with the final watermark, in order.
    assert [t[1:3] for t in timers] == [("a", 20), ("c", 30), ("b", 40), ("a", 110)]
    assert out.index(("timer", "a", 20, TimeDomain.EVENT_TIME, 20)) < out.index(
        ("element", "a", 100, 25)
    )
    assert all(t[3] is TimeDomain.EVENT_TIME and t[4] == t[2] for t in timers)


def test_one_timer_per_key_and_timestamp() -> None:
    class Twice(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            ctx.timer_service().register_event_time_timer(50)
            ctx.timer_service().register_event_time_timer(50)
            yield from ()

        def on_timer(
            self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
        ) -> Iterator[Any]:
            yield (ctx.get_current_key(), timestamp)

    script = [Timestamped(("a", 1), 1), Timestamped(("a", 2), 2), Timestamped(("b", 3), 3)]
    assert sorted(run_script(script, Twice())) == [("a", 50), ("b", 50)]


def test_deleted_timer_does_not_fire() -> None:
    class RegisterThenDelete(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            if value[1] == "set":
                ctx.timer_service().register_event_time_timer(100)
            else:
                ctx.timer_service().delete_event_time_timer(100)
            yield from ()

        def on_timer(
            self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
        ) -> Iterator[Any]:
            yield ctx.get_current_key()

    script = [
        Timestamped(("a", "set"), 1),
        Timestamped(("b", "set"), 1),
        Timestamped(("a", "del"), 2),
    ]
    assert run_script(script, RegisterThenDelete()) == ["b"]


def test_processing_time_timers_follow_the_injected_clock() -> None:
    class Later(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now + 1000)
            yield from ()

        def on_timer(
            self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
        ) -> Iterator[Any]:
            yield (ctx.get_current_key(), timestamp, ctx.time_domain())

    clock = ManualClock(5_000)
    script = [("k", 0), AdvanceProcessingTime(999), ("x", 0), AdvanceProcessingTime(1), ("y", 0)]
    out = run_script(script, Later(), clock)
    assert out == [("k", 6000, TimeDomain.PROCESSING_TIME)]  # x, y pending at end: not fired


def test_bounded_out_of_orderness_watermark_is_max_minus_bound_minus_one() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_batch_size(1)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(5)
    ).with_timestamp_assigner(SecondField())
    stream = env.from_collection(
        [("a", 10), ("a", 30), ("a", 20)]
    ).assign_timestamps_and_watermarks(strategy)
    out = list(stream.key_by(lambda v: v[0]).process(TimerEcho()).execute_and_collect())
    elements = [o for o in out if o[0] == "element"]
    # Watermark before each record: MIN, then 10-5-1=4, then 30-5-1=24.
    assert [e[3] for e in elements] == [-(2**63), 4, 24]
    assert [e[2] for e in elements] == [10, 30, 20]


def test_union_takes_the_minimum_watermark_of_its_inputs() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    clock = ManualClock(0)
    env.set_processing_time_clock(clock)
    fast = ScriptedSource(
        [Timestamped(("f", 1), 1), Watermark(1000), Timestamped(("f", 2), 2000)], clock
    )
    slow = ScriptedSource(
        [Timestamped(("s", 1), 1), Watermark(100), Timestamped(("s", 2), 200)], clock
    )
    none = WatermarkStrategy.no_watermarks()
    union = env.from_source(fast, none, "fast").union(env.from_source(slow, none, "slow"))

    class Probe(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            yield (value, ctx.timer_service().current_watermark())

    out = dict(union.key_by(lambda v: 0).process(Probe()).execute_and_collect())
    assert out[("f", 2)] <= 100 and out[("s", 2)] <= 100


def test_idle_input_stops_holding_back_the_watermark() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    clock = ManualClock(0)
    env.set_processing_time_clock(clock)
    busy = ScriptedSource(
        [
            Timestamped(("b", 1), 10),
            AdvanceProcessingTime(1000),
            Timestamped(("b", 2), 500),
            AdvanceProcessingTime(1),
            Timestamped(("b", 3), 900),
        ],
        clock,
    )
    quiet = ScriptedSource([], clock, unbounded=True)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_idleness(Duration.of_millis(500))
    a = env.from_source(busy, strategy, "busy")
    b = env.from_source(quiet, strategy, "quiet")

    class Probe(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            yield (value, ctx.timer_service().current_watermark())

    results = []
    for item in a.union(b).key_by(lambda v: 0).process(Probe()).execute_and_collect():
        results.append(item)
        if len(results) == 3:
            break
    # Once the quiet source is idle, the busy source's watermark (500 - 1) gets through.
    assert results[2] == (("b", 3), 499)


def test_final_watermark_fires_pending_event_timers_before_close() -> None:
    closed: list[str] = []

    class Remember(TimerEcho):
        def close(self) -> None:
            closed.append("closed")

    out = run_script([Timestamped(("a", 5), 5)], Remember(offset=10**12))
    assert out[-1][:3] == ("timer", "a", 5 + 10**12)
    assert closed == ["closed"]


def test_timers_and_state_are_scoped_to_the_timer_key() -> None:
    class CountThenReport(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.count = runtime_context.get_state(ValueStateDescriptor("n", Types.LONG()))

        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            self.count.update((self.count.value() or 0) + 1)
            ctx.timer_service().register_event_time_timer(1000)
            yield from ()

        def on_timer(
            self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
        ) -> Iterator[Any]:
            yield (ctx.get_current_key(), self.count.value())

    script = [Timestamped((k, 0), 0) for k in "abacab"]
    assert sorted(run_script(script, CountThenReport())) == [("a", 3), ("b", 2), ("c", 1)]


@pytest.mark.parametrize("bad", [-1, "5"])
def test_bad_watermark_arguments_fail_when_building(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        WatermarkStrategy.for_bounded_out_of_orderness(
            bad if bad == "5" else Duration.of_millis(bad)
        )
