# mypy: disallow-subclassing-any=False
"""Side outputs (``OutputTag``) from a process function and a keyed process function."""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import OutputTag, StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

SMALL = OutputTag("small", Types.STRING())
LARGE = OutputTag("large", Types.TUPLE([Types.LONG(), Types.DOUBLE()]))
FIRST_SEEN = OutputTag("first-seen", Types.LONG())


class Split(ProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        account, amount = value
        if amount < 1:
            yield SMALL, f"small {account} {amount}"
        elif amount > 500:
            yield LARGE, (account, amount)
        else:
            yield value


class FirstSeen(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        if count == 1:
            yield FIRST_SEEN, value[0]
        yield f"main {value[0]} n={count}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    data = [(1, 0.5), (2, 42.0), (1, 600.0), (3, 0.99), (2, 501.0), (1, 20.0), (4, 80.0)]
    stream = env.from_collection(data, type_info=Types.TUPLE([Types.LONG(), Types.DOUBLE()]))
    split = stream.process(Split(), output_type=Types.TUPLE([Types.LONG(), Types.DOUBLE()]))
    split.map(lambda v: f"normal {v[0]} {v[1]}", output_type=Types.STRING()).print()
    split.get_side_output(SMALL).map(lambda s: f"side {s}", output_type=Types.STRING()).print()
    split.get_side_output(LARGE).map(
        lambda v: f"large {v[0]} {v[1]}", output_type=Types.STRING()
    ).print()

    keyed = stream.key_by(lambda v: v[0], key_type=Types.LONG()).process(
        FirstSeen(), output_type=Types.STRING()
    )
    keyed.print()
    keyed.get_side_output(FIRST_SEEN).map(
        lambda k: f"first {k}", output_type=Types.STRING()
    ).print()
    env.execute("side outputs")


if __name__ == "__main__":
    main()
