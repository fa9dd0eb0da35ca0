"""Keyed state is scoped to the current key; TTL expires in processing time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fraudstream.common import Time, Types, WatermarkStrategy
from fraudstream.datastream import (
    AggregateFunction,
    AggregatingStateDescriptor,
    KeyedProcessFunction,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    RuntimeContext,
    StateTtlConfig,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
)
from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend, HashMapStateBackend
from fraudstream.exceptions import ConfigurationError, JobFailedError
from fraudstream.testing import AdvanceProcessingTime, CapturingSink, ManualClock, ScriptedSource

BACKENDS = {"memory": HashMapStateBackend, "rocksdb": EmbeddedRocksDBStateBackend}


@pytest.fixture(autouse=True, params=sorted(BACKENDS))
def state_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs once per state backend: new environments get that backend."""
    kind: str = request.param
    original = StreamExecutionEnvironment.get_execution_environment

    def with_backend(configuration: Any = None) -> StreamExecutionEnvironment:
        env = original(configuration)
        env.set_state_backend(BACKENDS[kind]())
        return env

    monkeypatch.setattr(StreamExecutionEnvironment, "get_execution_environment", with_backend)
    return kind


class Average(AggregateFunction):
    def create_accumulator(self) -> tuple[int, int]:
        return (0, 0)

    def add(self, value: Any, accumulator: tuple[int, int]) -> tuple[int, int]:
        return (accumulator[0] + value, accumulator[1] + 1)

    def get_result(self, accumulator: tuple[int, int]) -> float:
        return accumulator[0] / accumulator[1]


class AllKinds(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.last = runtime_context.get_state(ValueStateDescriptor("last", Types.LONG()))
        self.seen = runtime_context.get_list_state(ListStateDescriptor("seen", Types.LONG()))
        self.counts = runtime_context.get_map_state(
            MapStateDescriptor("counts", Types.LONG(), Types.LONG())
        )
        self.total = runtime_context.get_reducing_state(
            ReducingStateDescriptor("total", lambda a, b: a + b, Types.LONG())
        )
        self.avg = runtime_context.get_aggregating_state(
            AggregatingStateDescriptor("avg", Average(), Types.PICKLED_BYTE_ARRAY())
        )

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        key, number = value
        previous = self.last.value()
        self.last.update(number)
        self.seen.add(number)
        self.counts.put(number, (self.counts.get(number) or 0) + 1)
        self.total.add(number)
        self.avg.add(number)
        yield (
            key,
            previous,
            list(self.seen.get()),
            dict(self.counts.items()),
            self.total.get(),
            self.avg.get(),
        )


def test_every_state_kind_is_scoped_to_the_current_key() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    data = [("a", 1), ("b", 10), ("a", 2), ("a", 2), ("b", 20)]
    out = list(
        env.from_collection(data).key_by(lambda v: v[0]).process(AllKinds()).execute_and_collect()
    )
    assert out[3] == ("a", 2, [1, 2, 2], {1: 1, 2: 2}, 5, 5 / 3)
    assert out[4] == ("b", 10, [10, 20], {10: 1, 20: 1}, 30, 15.0)
    assert out[1] == ("b", None, [10], {10: 1}, 10, 10.0)


def test_value_state_update_none_clears() -> None:
    class Toggle(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.v = runtime_context.get_state(ValueStateDescriptor("v"))

        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            yield self.v.value()
            self.v.update(None if self.v.value() else "set")

    env = StreamExecutionEnvironment.get_execution_environment()
    out = list(
        env.from_collection([1, 1, 1]).key_by(lambda v: v).process(Toggle()).execute_and_collect()
    )
    assert out == [None, "set", None]


def test_same_state_name_with_another_kind_is_refused() -> None:
    class Clash(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            runtime_context.get_state(ValueStateDescriptor("x"))
            runtime_context.get_list_state(ListStateDescriptor("x"))

        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            yield value

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).key_by(lambda v: v).process(Clash()).print()
    with pytest.raises(JobFailedError, match="already registered as value state"):
        env.execute()


def test_keyed_state_off_a_keyed_stream_is_refused() -> None:
    from fraudstream.datastream import ProcessFunction

    class Stateful(ProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            runtime_context.get_state(ValueStateDescriptor("x"))

        def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterator[Any]:
            yield value

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).process(Stateful()).print()
    with pytest.raises(JobFailedError, match="keyed stream"):
        env.execute()


def _ttl_run(update_type: Any, script: list[Any]) -> list[Any]:
    ttl = StateTtlConfig.new_builder(Time.seconds(10)).set_update_type(update_type).build()

    class Remember(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            descriptor = ValueStateDescriptor("v", Types.STRING())
            descriptor.enable_time_to_live(ttl)
            self.v = runtime_context.get_state(descriptor)
            items = MapStateDescriptor("m", Types.STRING(), Types.STRING())
            items.enable_time_to_live(ttl)
            self.m = runtime_context.get_map_state(items)

        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
            yield (self.v.value(), self.m.get("k"))
            if value[1] == "write":
                self.v.update("x")
                self.m.put("k", "y")

    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock)
    sink = CapturingSink()
    source = ScriptedSource(script, clock)
    env.from_source(source, WatermarkStrategy.no_watermarks(), "s").key_by(lambda v: v[0]).process(
        Remember()
    ).sink_to(sink)
    env.execute()
    return sink.results


def test_ttl_expires_values_after_their_last_write() -> None:
    write = StateTtlConfig.UpdateType.OnCreateAndWrite
    script = [
        ("a", "write"),
        AdvanceProcessingTime(9_999),
        ("a", "read"),
        AdvanceProcessingTime(1),
        ("a", "read"),
    ]
    assert _ttl_run(write, script) == [(None, None), ("x", "y"), (None, None)]


def test_ttl_on_read_and_write_renews_on_read() -> None:
    renew = StateTtlConfig.UpdateType.OnReadAndWrite
    script = [
        ("a", "write"),
        AdvanceProcessingTime(9_000),
        ("a", "read"),
        AdvanceProcessingTime(9_000),
        ("a", "read"),
    ]
    assert _ttl_run(renew, script) == [(None, None), ("x", "y"), ("x", "y")]


def test_state_descriptor_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        ValueStateDescriptor("")
    with pytest.raises(TypeError):
        ValueStateDescriptor("x", "not a type")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StateTtlConfig.new_builder(Time.seconds(0))
    with pytest.raises(ConfigurationError):
        raise ConfigurationError("configuration errors are ValueErrors too")
