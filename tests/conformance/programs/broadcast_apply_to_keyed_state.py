# mypy: disallow-subclassing-any=False
"""``Context.apply_to_keyed_state`` in a ``KeyedBroadcastProcessFunction``.

PyFlink 2.3 does not offer ``apply_to_keyed_state`` to Python functions (Java Flink
does); fraudstream does. On Flink this program fails with an ``AttributeError``.

Thresholds arrive on a broadcast stream, payments on a keyed one, in no defined order
between the two. Each (threshold, payment) pair above the threshold is reported exactly
once: by ``process_element`` when the threshold came first, by
``apply_to_keyed_state`` over the remembered payments when the payment came first.
"""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedBroadcastProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor

THRESHOLDS = MapStateDescriptor("thresholds", Types.STRING(), Types.DOUBLE())
SEEN = ListStateDescriptor("seen", Types.DOUBLE())


class Screen(KeyedBroadcastProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.seen = runtime_context.get_list_state(SEEN)

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        account, amount = value
        self.seen.add(amount)
        for name, limit in sorted(ctx.get_broadcast_state(THRESHOLDS).items()):
            if amount > limit:
                yield f"match {name} account={account} amount={amount}"

    def process_broadcast_element(self, value: Any, ctx: Any) -> Iterator[str]:
        name, limit = value
        ctx.get_broadcast_state(THRESHOLDS).put(name, limit)
        found: list[str] = []

        def check(key: Any, state: Any) -> None:
            found.extend(f"match {name} account={key} amount={a}" for a in state.get() if a > limit)

        ctx.apply_to_keyed_state(SEEN, check)
        yield from found
        yield f"rule {name} {limit}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    payments = env.from_collection(
        [(1, 50.0), (2, 700.0), (1, 1200.0), (3, 9.0), (2, 30.0), (4, 5000.0)],
        type_info=Types.TUPLE([Types.LONG(), Types.DOUBLE()]),
    )
    rules = env.from_collection(
        [("high", 1000.0), ("medium", 100.0)],
        type_info=Types.TUPLE([Types.STRING(), Types.DOUBLE()]),
    )
    payments.key_by(lambda p: p[0], key_type=Types.LONG()).connect(
        rules.broadcast(THRESHOLDS)
    ).process(Screen(), output_type=Types.STRING()).print()
    env.execute("broadcast state")


if __name__ == "__main__":
    main()
