# mypy: disallow-subclassing-any=False
"""Every kind of keyed state: Value, List, Map, Reducing and Aggregating.

Each element updates all five and prints what they hold; an amount of 0 clears them.
Map state is printed sorted: its iteration order is not defined.
"""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import AggregateFunction, KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import (
    AggregatingStateDescriptor,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    ValueStateDescriptor,
)


class Average(AggregateFunction):
    def create_accumulator(self) -> tuple[float, int]:
        return 0.0, 0

    def add(self, value: float, accumulator: tuple[float, int]) -> tuple[float, int]:
        return accumulator[0] + value, accumulator[1] + 1

    def get_result(self, accumulator: tuple[float, int]) -> float:
        return round(accumulator[0] / accumulator[1], 3)

    def merge(self, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
        return a[0] + b[0], a[1] + b[1]


class AllStates(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        ctx = runtime_context
        self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))
        self.history = ctx.get_list_state(ListStateDescriptor("history", Types.DOUBLE()))
        self.by_kind = ctx.get_map_state(
            MapStateDescriptor("by-kind", Types.STRING(), Types.LONG())
        )
        self.total = ctx.get_reducing_state(
            ReducingStateDescriptor("total", lambda a, b: a + b, Types.DOUBLE())
        )
        self.average = ctx.get_aggregating_state(
            AggregatingStateDescriptor("average", Average(), Types.PICKLED_BYTE_ARRAY())
        )

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        key, kind, amount = value
        if amount == 0:
            for state in (self.count, self.history, self.by_kind, self.total, self.average):
                state.clear()
            yield (
                f"k{key} cleared count={self.count.value()} history={list(self.history.get())} "
                f"empty-map={self.by_kind.is_empty()} total={self.total.get()} "
                f"average={self.average.get()}"
            )
            return
        self.count.update((self.count.value() or 0) + 1)
        self.history.add(amount)
        if len(list(self.history.get())) > 3:
            self.history.update(list(self.history.get())[-3:])
        previous = self.by_kind.get(kind) if self.by_kind.contains(kind) else 0
        self.by_kind.put(kind, previous + 1)
        if kind == "drop":
            self.by_kind.remove("drop")
        self.total.add(amount)
        self.average.add(amount)
        yield (
            f"k{key} count={self.count.value()} history={list(self.history.get())} "
            f"map={sorted(self.by_kind.items())} keys={sorted(self.by_kind.keys())} "
            f"values={sorted(self.by_kind.values())} total={self.total.get()} "
            f"average={self.average.get()}"
        )
        self.history.add_all([])


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    data = [
        (1, "card", 10.0),
        (2, "cash", 5.0),
        (1, "cash", 2.5),
        (1, "card", 7.0),
        (2, "drop", 1.0),
        (1, "card", 4.0),
        (1, "drop", 1.0),
        (2, "cash", 0.0),
        (2, "card", 3.0),
    ]
    stream = env.from_collection(
        data, type_info=Types.TUPLE([Types.LONG(), Types.STRING(), Types.DOUBLE()])
    )
    stream.key_by(lambda v: v[0], key_type=Types.LONG()).process(
        AllStates(), output_type=Types.STRING()
    ).print()
    env.execute("state kinds")


if __name__ == "__main__":
    main()
