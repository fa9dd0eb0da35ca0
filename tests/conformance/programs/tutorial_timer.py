# mypy: disallow-subclassing-any=False
"""The tutorial's next step: the small-transaction flag expires after one minute.

Processing-time timers, registered and deleted as the tutorial describes. The whole run
takes seconds, so no flag expires: the output is deterministic on every engine.
"""

from collections.abc import Iterator
from typing import Any

from pyflink.common.typeinfo import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

SMALL_AMOUNT = 1.00
LARGE_AMOUNT = 500.00
ONE_MINUTE = 60 * 1000


class FraudDetector(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.flag_state = runtime_context.get_state(ValueStateDescriptor("flag", Types.BOOLEAN()))
        self.timer_state = runtime_context.get_state(ValueStateDescriptor("timer", Types.LONG()))

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        account_id, _timestamp, amount = value
        if self.flag_state.value() is not None:
            if amount > LARGE_AMOUNT:
                yield f"Alert{{id={account_id}}}"
            self.clean_up(ctx)
        if amount < SMALL_AMOUNT:
            self.flag_state.update(True)
            timer = ctx.timer_service().current_processing_time() + ONE_MINUTE
            ctx.timer_service().register_processing_time_timer(timer)
            self.timer_state.update(timer)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[str]:
        self.timer_state.clear()
        self.flag_state.clear()
        yield from ()

    def clean_up(self, ctx: Any) -> None:
        timer = self.timer_state.value()
        ctx.timer_service().delete_processing_time_timer(timer)
        self.timer_state.clear()
        self.flag_state.clear()


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    data = [
        (1, 1000, 188.23),
        (2, 1001, 0.50),
        (2, 1002, 600.00),
        (3, 1003, 42.00),
        (1, 1004, 0.89),
        (1, 1005, 300.00),
        (4, 1006, 0.10),
        (4, 1007, 520.00),
        (3, 1008, 0.75),
        (3, 1009, 800.00),
        (5, 1010, 0.01),
        (5, 1011, 0.02),
        (5, 1012, 999.99),
    ]
    transactions = env.from_collection(
        data, type_info=Types.TUPLE([Types.LONG(), Types.LONG(), Types.DOUBLE()])
    )
    transactions.key_by(lambda t: t[0]).process(FraudDetector()).print()
    env.execute("Fraud Detection with timers")


if __name__ == "__main__":
    main()
