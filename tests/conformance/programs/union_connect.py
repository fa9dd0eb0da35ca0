# mypy: disallow-subclassing-any=False
"""``union`` of three streams, and ``connect`` with co-functions, keyed and not.

The order between two inputs of an operator is not defined, so every output here is
one that any interleaving produces: a symmetric join emits each matching pair once,
whichever side arrives last.
"""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import (
    CoFlatMapFunction,
    CoMapFunction,
    CoProcessFunction,
    KeyedCoProcessFunction,
    RuntimeContext,
)
from pyflink.datastream.state import ListStateDescriptor

ORDERS = [(1, "book"), (2, "lamp"), (1, "pen"), (3, "desk"), (4, "cup")]
PAYMENTS = [(1, 12.5), (3, 99.0), (1, 3.0), (5, 7.0), (2, 20.0), (2, 1.0)]


class Tag(CoMapFunction):
    def map1(self, value: Any) -> str:
        return f"comap order {value[0]} {value[1]}"

    def map2(self, value: Any) -> str:
        return f"comap payment {value[0]} {value[1]}"


class Explode(CoFlatMapFunction):
    def flat_map1(self, value: Any) -> Iterator[str]:
        yield from (f"coflat order-char {c}" for c in value[1][:2])

    def flat_map2(self, value: Any) -> Iterator[str]:
        if value[1] > 10:
            yield f"coflat big-payment {value[0]}"


class Route(CoProcessFunction):
    def process_element1(self, value: Any, ctx: Any) -> Iterator[str]:
        yield f"coprocess left {value[0]}"

    def process_element2(self, value: Any, ctx: Any) -> Iterator[str]:
        yield f"coprocess right {value[0]}"


class Join(KeyedCoProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.orders = runtime_context.get_list_state(ListStateDescriptor("orders", Types.STRING()))
        self.payments = runtime_context.get_list_state(
            ListStateDescriptor("payments", Types.DOUBLE())
        )

    def process_element1(self, value: Any, ctx: Any) -> Iterator[str]:
        self.orders.add(value[1])
        for amount in self.payments.get():
            yield f"join {ctx.get_current_key()} {value[1]} {amount}"

    def process_element2(self, value: Any, ctx: Any) -> Iterator[str]:
        self.payments.add(value[1])
        for item in self.orders.get():
            yield f"join {ctx.get_current_key()} {item} {value[1]}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    order_type = Types.TUPLE([Types.LONG(), Types.STRING()])
    payment_type = Types.TUPLE([Types.LONG(), Types.DOUBLE()])
    orders = env.from_collection(ORDERS, type_info=order_type)
    payments = env.from_collection(PAYMENTS, type_info=payment_type)

    a = env.from_collection([1, 2, 3], type_info=Types.INT())
    b = env.from_collection([10, 20], type_info=Types.INT())
    c = env.from_collection([100], type_info=Types.INT())
    a.union(b, c).map(lambda x: f"union {x * 2}", output_type=Types.STRING()).print()
    a.union(a).map(lambda x: f"self-union {x}", output_type=Types.STRING()).print()

    connected = orders.connect(payments)
    connected.map(Tag(), output_type=Types.STRING()).print()
    connected.flat_map(Explode(), output_type=Types.STRING()).print()
    connected.process(Route(), output_type=Types.STRING()).print()
    orders.key_by(lambda o: o[0], key_type=Types.LONG()).connect(
        payments.key_by(lambda p: p[0], key_type=Types.LONG())
    ).process(Join(), output_type=Types.STRING()).print()
    env.execute("union and connect")


if __name__ == "__main__":
    main()
