"""Stream operations: map/flat_map/filter, union, connect, side outputs, broadcast, print."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fraudstream.common import Row, Types
from fraudstream.datastream import (
    BroadcastProcessFunction,
    CoMapFunction,
    CoProcessFunction,
    KeyedBroadcastProcessFunction,
    KeyedCoProcessFunction,
    KeyedProcessFunction,
    MapStateDescriptor,
    OutputTag,
    RuntimeContext,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
)
from fraudstream.exceptions import JobFailedError, UnsupportedFeatureError


def env() -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment.get_execution_environment()


def test_map_flat_map_filter_chain() -> None:
    e = env()
    out = (
        e.from_collection([1, 2, 3, 4])
        .map(lambda x: x * 10)
        .flat_map(lambda x: [x, x + 1])
        .filter(lambda x: x % 20 != 0)
        .execute_and_collect()
    )
    assert list(out) == [10, 11, 21, 30, 31, 41]


def test_union_and_co_map() -> None:
    e = env()
    a = e.from_collection([1, 2])
    b = e.from_collection([3])
    assert sorted(a.union(b).execute_and_collect()) == [1, 2, 3]

    class Tag(CoMapFunction):
        def map1(self, value: Any) -> Any:
            return ("left", value)

        def map2(self, value: Any) -> Any:
            return ("right", value)

    e = env()
    out = e.from_collection([1]).connect(e.from_collection(["x"])).map(Tag()).execute_and_collect()
    assert sorted(out) == [("left", 1), ("right", "x")]


def test_keyed_co_process_joins_on_key() -> None:
    class Join(KeyedCoProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.name = runtime_context.get_state(ValueStateDescriptor("name"))

        def process_element1(
            self, value: Any, ctx: KeyedCoProcessFunction.Context
        ) -> Iterator[Any]:
            self.name.update(value[1])
            yield from ()

        def process_element2(
            self, value: Any, ctx: KeyedCoProcessFunction.Context
        ) -> Iterator[Any]:
            yield (ctx.get_current_key(), self.name.value(), value[1])

    e = env()
    names = e.from_collection([(1, "ann"), (2, "bob")])
    orders = e.from_collection([(1, 9.5), (2, 3.0), (3, 1.0)])
    out = names.connect(orders).key_by(lambda n: n[0], lambda o: o[0]).process(Join())
    assert sorted(out.execute_and_collect(), key=str) == [
        (1, "ann", 9.5),
        (2, "bob", 3.0),
        (3, None, 1.0),
    ]


def test_non_keyed_co_process_has_no_timers() -> None:
    class Timer(CoProcessFunction):
        def process_element1(self, value: Any, ctx: CoProcessFunction.Context) -> Iterator[Any]:
            ctx.timer_service().register_event_time_timer(1)
            yield value

        def process_element2(self, value: Any, ctx: CoProcessFunction.Context) -> Iterator[Any]:
            yield value

    e = env()
    e.from_collection([1]).connect(e.from_collection([2])).process(Timer()).print()
    with pytest.raises(JobFailedError, match="keyed stream"):
        e.execute()


def test_side_outputs_by_yielding_tag_and_value() -> None:
    odd = OutputTag("odd", Types.LONG())

    class Split(KeyedProcessFunction):
        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            if value % 2:
                yield odd, value
            else:
                yield value

    e = env()
    main = e.from_collection([1, 2, 3, 4]).key_by(lambda v: v).process(Split())
    side = main.get_side_output(odd)
    collected: list[Any] = []
    side.map(lambda v: ("odd", v)).add_sink(lambda v, ctx: collected.append(v))
    assert list(main.execute_and_collect()) == [2, 4]
    assert collected == [("odd", 1), ("odd", 3)]


RULES = MapStateDescriptor("rules", Types.STRING(), Types.LONG())


class Threshold(KeyedBroadcastProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.seen = runtime_context.get_state(ValueStateDescriptor("seen", Types.LONG()))

    def process_element(
        self, value: Any, ctx: KeyedBroadcastProcessFunction.ReadOnlyContext
    ) -> Iterator[Any]:
        self.seen.update((self.seen.value() or 0) + 1)
        limit = ctx.get_broadcast_state(RULES).get("limit")
        if limit is not None and value[1] > limit:
            yield ("over", ctx.get_current_key(), value[1])

    def process_broadcast_element(
        self, value: Any, ctx: KeyedBroadcastProcessFunction.Context
    ) -> Iterator[Any]:
        ctx.get_broadcast_state(RULES).put("limit", value)
        keys: list[Any] = []
        ctx.apply_to_keyed_state(
            ValueStateDescriptor("seen", Types.LONG()),
            lambda key, state: keys.append((key, state.value())),
        )
        yield ("rule", value, sorted(keys))


def test_keyed_broadcast_state_and_apply_to_keyed_state() -> None:
    from fraudstream.common import WatermarkStrategy
    from fraudstream.testing import CapturingSink, ManualClock, ScriptedSource

    e = env()
    clock = ManualClock(0)
    e.set_processing_time_clock(clock)
    none = WatermarkStrategy.no_watermarks()
    rules = e.from_source(ScriptedSource([5], clock), none, "rules").broadcast(RULES)
    events = e.from_source(ScriptedSource([("a", 3), ("b", 9)], clock), none, "events")
    sink = CapturingSink()
    events.key_by(lambda v: v[0]).connect(rules).process(Threshold()).sink_to(sink)
    e.execute()
    assert ("rule", 5, []) in sink.results or ("rule", 5, [("a", 1), ("b", 1)]) in sink.results
    assert ("over", "b", 9) in sink.results
    assert ("over", "a", 3) not in sink.results


def test_broadcast_state_is_read_only_on_the_element_side() -> None:
    class Writer(BroadcastProcessFunction):
        def process_element(
            self, value: Any, ctx: BroadcastProcessFunction.ReadOnlyContext
        ) -> Iterator[Any]:
            ctx.get_broadcast_state(RULES).put("limit", 1)  # type: ignore[attr-defined]
            yield value

        def process_broadcast_element(
            self, value: Any, ctx: BroadcastProcessFunction.Context
        ) -> Iterator[Any]:
            yield from ()

    e = env()
    e.from_collection([1]).connect(e.from_collection([2]).broadcast(RULES)).process(
        Writer()
    ).print()
    with pytest.raises(JobFailedError, match="read-only"):
        e.execute()


def test_print_formats_like_flink(capsys: pytest.CaptureFixture[str]) -> None:
    e = env()
    e.from_collection(
        [(1, 2.5, "a")], type_info=Types.TUPLE([Types.LONG(), Types.DOUBLE(), Types.STRING()])
    ).print()
    e.from_collection([Row(1, "x")], type_info=Types.ROW([Types.INT(), Types.STRING()])).print(
        "rows"
    )
    e.from_collection([(1, 2.5)]).print()
    e.from_collection([1.0e7], type_info=Types.DOUBLE()).print()
    e.execute()
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted(["(1,2.5,a)", "rows> +I[1, x]", "(1, 2.5)", "1.0E7"])


def test_print_prefixes_subtask_with_parallelism(capsys: pytest.CaptureFixture[str]) -> None:
    e = env()
    e.set_parallelism(2)
    e.from_collection(list(range(6))).key_by(lambda v: v).map(lambda v: v).print("out")
    e.execute()
    lines = capsys.readouterr().out.splitlines()
    assert sorted(int(line.split("> ")[1]) for line in lines) == list(range(6))
    assert {line.split("> ")[0] for line in lines} <= {"out:1", "out:2"}


def test_keyed_reduce_and_sum() -> None:
    e = env()
    data = [("a", 1), ("b", 2), ("a", 3)]
    assert list(e.from_collection(data).key_by(lambda v: v[0]).sum(1).execute_and_collect()) == [
        ("a", 1),
        ("b", 2),
        ("a", 4),
    ]


def test_execute_and_collect_with_limit_on_unbounded_input() -> None:
    from fraudstream.common import WatermarkStrategy
    from fraudstream.testing import ScriptedSource

    e = env()
    source = ScriptedSource([1, 2, 3], unbounded=True)
    stream = e.from_source(source, WatermarkStrategy.no_watermarks(), "s")
    assert stream.map(lambda v: v * 2).execute_and_collect(limit=2) == [2, 4]


def test_unsupported_features_fail_naming_the_feature() -> None:
    e = env()
    stream = e.from_collection([1])
    with pytest.raises(UnsupportedFeatureError, match="window"):
        stream.key_by(lambda v: v).window(None)
    from fraudstream.datastream import RuntimeExecutionMode

    with pytest.raises(UnsupportedFeatureError, match="BATCH"):
        e.set_runtime_mode(RuntimeExecutionMode.BATCH)


def test_bad_arguments_fail_when_building() -> None:
    e = env()
    stream = e.from_collection([1])
    with pytest.raises(TypeError):
        stream.map(42)
    with pytest.raises(TypeError):
        stream.key_by("field")
    with pytest.raises(TypeError, match="KeyedProcessFunction"):
        stream.key_by(lambda v: v).process(object())
    with pytest.raises(TypeError, match="element 1"):
        e.from_collection([1, "x"], type_info=Types.LONG())
    with pytest.raises(ValueError):
        e.set_parallelism(0)
    with pytest.raises(TypeError):
        stream.get_side_output("tag")  # type: ignore[arg-type]


def test_user_errors_name_the_operator_and_record() -> None:
    e = env()
    e.from_collection([1, 0, 2]).map(lambda v: 10 // v).name("divide").print()
    with pytest.raises(JobFailedError) as info:
        e.execute()
    assert info.value.operator == "divide"
    assert info.value.record == 0
    assert "ZeroDivisionError" in str(info.value)


class RunningCount(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.INT()))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        yield (ctx.get_current_key(), count)


def test_a_key_selector_failing_mid_batch_names_the_record_or_diverts_it() -> None:
    records = [{"k": "a"}, {"k": "b"}, {}, {"k": "a"}, {"x": 1}, {"k": "b"}]
    e = env()
    e.from_collection(records).key_by(lambda r: r["k"]).process(RunningCount()).name("count")
    with pytest.raises(JobFailedError) as info:
        e.execute()
    assert info.value.operator == "count"
    assert info.value.record == {}
    assert "KeyError" in str(info.value)

    errors = OutputTag("errors")
    e = env()
    counted = (
        e.from_collection(records)
        .key_by(lambda r: r["k"])
        .process(RunningCount())
        .side_output_on_error(errors)
    )
    failed: list[Any] = []
    counted.get_side_output(errors).add_sink(lambda v, ctx: failed.append(v))
    assert list(counted.execute_and_collect()) == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert [f[0] for f in failed] == [{}, {"x": 1}]
    assert all("KeyError" in f[1] for f in failed)


def test_failing_records_can_go_to_a_side_output() -> None:
    errors = OutputTag("errors")
    e = env()
    divided = e.from_collection([1, 0, 2, 0, 5]).map(lambda v: 10 // v).side_output_on_error(errors)
    failed: list[Any] = []
    divided.get_side_output(errors).add_sink(lambda v, ctx: failed.append(v))
    assert list(divided.execute_and_collect()) == [10, 5, 2]
    assert [f[0] for f in failed] == [0, 0]
    assert all("ZeroDivisionError" in f[1] for f in failed)
