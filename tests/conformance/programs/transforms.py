# mypy: disallow-subclassing-any=False
"""Stateless transformations, function classes and lambdas, rows, the runtime context,
``execute_and_collect``, and keyed state at parallelism 2."""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import (
    FilterFunction,
    FlatMapFunction,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    ProcessFunction,
    RuntimeContext,
)
from pyflink.datastream.state import ValueStateDescriptor

PERSON = Types.ROW_NAMED(["name", "age"], [Types.STRING(), Types.INT()])


class Greet(MapFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.parallelism = runtime_context.get_number_of_parallel_subtasks()

    def map(self, value: Any) -> str:
        return f"map hello {value.name} ({value['age']}) p={self.parallelism}"


class Words(FlatMapFunction):
    def flat_map(self, value: Any) -> Iterator[str]:
        for word in value.split():
            yield f"word {word}"


class Adults(FilterFunction):
    def filter(self, value: Any) -> bool:
        return bool(value.age >= 18)


class ByInitial(KeySelector):
    def get_key(self, value: Any) -> str:
        return str(value.name[0])


class Describe(ProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        stamp = ctx.timestamp()
        yield f"process {value[0]}:{value[1]} has-timestamp={stamp is not None and stamp >= 0}"


class CountPerKey(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.seen = runtime_context.get_state(ValueStateDescriptor("seen", Types.INT()))
        self.subtasks = runtime_context.get_number_of_parallel_subtasks()

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        seen = (self.seen.value() or 0) + 1
        self.seen.update(seen)
        yield f"initial-{ctx.get_current_key()} {value.name} n={seen} subtasks={self.subtasks}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    people = env.from_collection(
        [Row("ada", 36), Row("bob", 12), Row("alan", 41), Row("bea", 17), Row("cy", 70)],
        type_info=PERSON,
    )
    people.map(Greet(), output_type=Types.STRING()).print().set_parallelism(1)
    people.filter(Adults()).map(
        lambda p: f"adult {p.name}", output_type=Types.STRING()
    ).print().set_parallelism(1)
    people.filter(lambda p: p.age < 18).map(
        lambda p: f"minor {p[0]}", output_type=Types.STRING()
    ).print().set_parallelism(1)
    people.key_by(ByInitial(), key_type=Types.STRING()).process(
        CountPerKey(), output_type=Types.STRING()
    ).print().set_parallelism(1)

    lines = env.from_collection(["to be or", "not to be"], type_info=Types.STRING())
    lines.flat_map(Words(), output_type=Types.STRING()).print().set_parallelism(1)
    lines.flat_map(lambda s: [len(s)], output_type=Types.INT()).map(
        lambda n: f"length {n}", output_type=Types.STRING()
    ).print().set_parallelism(1)
    pairs = env.from_collection([("x", 1), ("y", 2)], Types.TUPLE([Types.STRING(), Types.INT()]))
    pairs.process(Describe(), output_type=Types.STRING()).print().set_parallelism(1)
    env.execute("transforms")

    collected = env.from_collection([3, 1, 2], type_info=Types.INT()).map(
        lambda n: n * 10, output_type=Types.INT()
    )
    with collected.execute_and_collect() as results:
        print(f"collected {sorted(results)}")


if __name__ == "__main__":
    main()
