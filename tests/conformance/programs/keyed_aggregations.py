# mypy: disallow-subclassing-any=False
"""Rolling aggregations on keyed streams: ``reduce``, ``sum``, ``min``, ``max``, ``min_by``,
``max_by``, with a ``ReduceFunction`` class and with a lambda."""

from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import ReduceFunction

ROW = Types.TUPLE([Types.STRING(), Types.LONG(), Types.DOUBLE()])


class Longest(ReduceFunction):
    def reduce(self, value1: Any, value2: Any) -> Any:
        return value2 if value2[2] >= value1[2] else value1


def show(label: str) -> Any:
    return lambda v: f"{label}-{v[0]} {v[1]} {v[2]}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    data = [
        ("a", 1, 2.5),
        ("b", 10, 1.0),
        ("a", 3, 0.5),
        ("a", 2, 9.0),
        ("b", 5, 4.0),
        ("c", 7, 7.0),
        ("b", 20, 0.25),
    ]
    stream = env.from_collection(data, type_info=ROW)
    keyed = stream.key_by(lambda v: v[0], key_type=Types.STRING())
    keyed.reduce(lambda a, b: (a[0], a[1] + b[1], a[2] * b[2])).map(
        show("reduce"), output_type=Types.STRING()
    ).print()
    keyed.reduce(Longest()).map(show("longest"), output_type=Types.STRING()).print()
    keyed.sum(1).map(show("sum1"), output_type=Types.STRING()).print()
    keyed.sum(2).map(show("sum2"), output_type=Types.STRING()).print()
    keyed.min(1).map(show("min1"), output_type=Types.STRING()).print()
    keyed.max(2).map(show("max2"), output_type=Types.STRING()).print()
    keyed.min_by(2).map(show("minby2"), output_type=Types.STRING()).print()
    keyed.max_by(1).map(show("maxby1"), output_type=Types.STRING()).print()
    env.execute("keyed aggregations")


if __name__ == "__main__":
    main()
