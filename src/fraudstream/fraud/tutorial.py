"""The DataStream tutorial's fraud detector, and its timer variant.

A transaction is ``(account_id, timestamp, amount)``, as in the tutorial. An account
that makes a small transaction (< 1.00) immediately followed by a large one (> 500.00)
raises an alert. The timer variant forgets the small transaction one minute (of
processing time) after it, as the tutorial's "next steps" describe: scammers do not
wait long between the test charge and the large one.

Both detectors use only the public DataStream API, so they also run on Apache Flink.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fraudstream.common.typeinfo import Types
from fraudstream.datastream.functions import KeyedProcessFunction, RuntimeContext
from fraudstream.datastream.state import ValueStateDescriptor

__all__ = [
    "LARGE_AMOUNT",
    "ONE_MINUTE_MS",
    "SMALL_AMOUNT",
    "Alert",
    "FraudDetector",
    "TimedFraudDetector",
    "build_tutorial_job",
]

SMALL_AMOUNT = 1.00
LARGE_AMOUNT = 500.00
ONE_MINUTE_MS = 60_000


@dataclass(frozen=True)
class Alert:
    """An account flagged by the tutorial detector; prints as the tutorial prints it."""

    account_id: int
    timestamp: int = 0
    amount: float = 0.0

    def __str__(self) -> str:
        return f"Alert{{id={self.account_id}}}"

    def to_json_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready fields (the id also as a string, exact in browsers)."""
        return {
            "accountId": self.account_id,
            "accountIdStr": str(self.account_id),
            "timestamp": self.timestamp,
            "amount": self.amount,
        }


class FraudDetector(KeyedProcessFunction):
    """Small-then-large detector, keyed by account (the tutorial's ``FraudDetector``)."""

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the per-account flag."""
        self.flag_state = runtime_context.get_state(ValueStateDescriptor("flag", Types.BOOLEAN()))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Alert]:
        """Alert on a large transaction right after a small one."""
        amount = value[2]
        flag = self.flag_state
        if flag.value() is not None:
            if amount > LARGE_AMOUNT:
                yield Alert(value[0], value[1], amount)
            flag.clear()
        if amount < SMALL_AMOUNT:
            flag.update(True)


class TimedFraudDetector(KeyedProcessFunction):
    """The detector whose flag expires one minute after the small transaction.

    Order per account: a small transaction sets the flag and a processing-time timer one
    minute later; a large transaction while the flag is set alerts; any transaction after
    a small one clears the flag and deletes its timer; the timer clears the flag.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        """Create the per-account flag and the pending timer's timestamp."""
        self.flag_state = runtime_context.get_state(ValueStateDescriptor("flag", Types.BOOLEAN()))
        self.timer_state = runtime_context.get_state(ValueStateDescriptor("timer", Types.LONG()))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Alert]:
        """Alert on a large transaction within a minute after a small one."""
        amount = value[2]
        if self.flag_state.value() is not None:
            if amount > LARGE_AMOUNT:
                yield Alert(value[0], value[1], amount)
            timer = self.timer_state.value()
            if timer is not None:
                ctx.timer_service().delete_processing_time_timer(timer)
            self.flag_state.clear()
            self.timer_state.clear()
        if amount < SMALL_AMOUNT:
            self.flag_state.update(True)
            timer = ctx.timer_service().current_processing_time() + ONE_MINUTE_MS
            ctx.timer_service().register_processing_time_timer(timer)
            self.timer_state.update(timer)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Alert]:
        """A minute passed since the small transaction: forget it."""
        self.flag_state.clear()
        self.timer_state.clear()
        yield from ()


def build_tutorial_job(transactions: Any, timer: bool = False) -> Any:
    """Key ``(account_id, timestamp, amount)`` transactions by account and detect fraud.

    Works on a fraudstream or a PyFlink ``DataStream``; returns the alert stream.
    """
    detector = TimedFraudDetector() if timer else FraudDetector()
    return (
        transactions.key_by(lambda t: t[0])
        .process(detector)
        .name("fraud-detector")
        .uid("fraud-detector")
    )


def _tutorial_input(env: Any, options: Any) -> Any:
    """Transactions from ``--source`` as the tutorial's ``(account, timestamp, amount)``.

    The account is the payee: the tutorial's pattern (a small payment, then a large one
    from the same account) is what the generator injects per payee.
    """
    from fraudstream.common.watermark_strategy import WatermarkStrategy
    from fraudstream.connectors.specs import make_source

    source = make_source(options.source, "transactions")
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "transactions").uid(
        "transactions"
    )
    return stream.map(lambda t: (t.payee_id, t.event_time, t.payment_amount)).name("to-tutorial")


def cli_job(env: Any, options: Any) -> Any:
    """``fraudstream job tutorial``: the detector over ``--source``."""
    return build_tutorial_job(_tutorial_input(env, options))


def cli_job_timer(env: Any, options: Any) -> Any:
    """``fraudstream job tutorial-timer``: the timer variant over ``--source``."""
    return build_tutorial_job(_tutorial_input(env, options), timer=True)
