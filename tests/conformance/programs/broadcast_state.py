# mypy: disallow-subclassing-any=False
"""Broadcast state with a ``KeyedBroadcastProcessFunction``.

Thresholds arrive on a broadcast stream, payments on a keyed one, in no defined order
between the two. Payments are remembered in keyed state, and an event-time timer at the
end of time reads the broadcast state when both inputs have ended: its output is the
same for every interleaving. Read-only broadcast state in ``process_element`` is
exercised through a count that cannot depend on the order either.
"""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedBroadcastProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor

THRESHOLDS = MapStateDescriptor("thresholds", Types.STRING(), Types.DOUBLE())
END_OF_TIME = 2**62


class Screen(KeyedBroadcastProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.seen = runtime_context.get_list_state(ListStateDescriptor("seen", Types.DOUBLE()))

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        known = len(list(ctx.get_broadcast_state(THRESHOLDS).keys()))
        self.seen.add(value[1])
        ctx.timer_service().register_event_time_timer(END_OF_TIME)
        yield f"payment {value[0]} {value[1]} rules-known<=2:{known <= 2}"

    def process_broadcast_element(self, value: Any, ctx: Any) -> Iterator[str]:
        name, limit = value
        state = ctx.get_broadcast_state(THRESHOLDS)
        state.put(name, limit)
        yield f"rule {name} {limit} contains={state.contains(name)}"

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[str]:
        rules = sorted(ctx.get_broadcast_state(THRESHOLDS).items())
        for amount in self.seen.get():
            for name, limit in rules:
                if amount > limit:
                    yield f"match {name} account={ctx.get_current_key()} amount={amount}"


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
