# mypy: disallow-subclassing-any=False
"""Event-time timers under bounded out-of-orderness watermarks.

The input is out of order by at most 5 seconds, within the watermark bound, so no
element is ever late: what the timers emit does not depend on when watermarks are
emitted, only on event time. Two jobs on one stream:

- a per-key sorter: buffer elements, one event-time timer per timestamp, emit in
  timestamp order when the watermark passes;
- the tutorial detector with an event-time expiry: a large amount within one minute
  (event time) after a small one alerts; a timer forgets the small one.
"""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Duration, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment, TimeDomain
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor

ONE_MINUTE = 60_000


class SecondField(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[1])


class Sorter(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.buffer = runtime_context.get_list_state(
            ListStateDescriptor("buffer", Types.PICKLED_BYTE_ARRAY())
        )

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        self.buffer.add(value)
        ctx.timer_service().register_event_time_timer(ctx.timestamp())
        yield from ()

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[str]:
        buffered = list(self.buffer.get())
        due = sorted(v for v in buffered if v[1] <= timestamp)
        self.buffer.update([v for v in buffered if v[1] > timestamp])
        domain = ctx.time_domain() == TimeDomain.EVENT_TIME
        for value in due:
            key = ctx.get_current_key()
            yield f"sort-{key} ts={value[1]} amount={value[2]} event_time={domain}"


class ExpiringDetector(KeyedProcessFunction):
    """Each small transaction is remembered for one minute of event time.

    A timer at time T reads only what elements with timestamps <= T wrote, so its output
    does not depend on when the watermark passes T.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        self.smalls = runtime_context.get_map_state(
            MapStateDescriptor("smalls", Types.LONG(), Types.BOOLEAN())
        )

    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        account, ts, amount = value
        if amount > 500:
            for small_at in sorted(self.smalls.keys()):
                if small_at <= ts < small_at + ONE_MINUTE:
                    yield f"alert-{account} ts={ts} small_at={small_at}"
        if amount < 1:
            self.smalls.put(ts, True)
            ctx.timer_service().register_event_time_timer(ts + ONE_MINUTE)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[str]:
        small_at = timestamp - ONE_MINUTE
        if self.smalls.contains(small_at):
            self.smalls.remove(small_at)
            yield f"expired-{ctx.get_current_key()} at={timestamp} small_at={small_at}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    data = [
        (1, 10_000, 0.5),
        (2, 12_000, 40.0),
        (1, 8_000, 7.0),
        (2, 11_000, 0.2),
        (1, 30_000, 900.0),
        (3, 29_000, 0.9),
        (2, 95_000, 800.0),
        (3, 91_000, 600.0),
        (1, 93_000, 0.1),
        (3, 150_000, 1.0),
        (1, 149_000, 700.0),
        (2, 200_000, 5.0),
        (1, 196_000, 3.0),
    ]
    watermarks = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_seconds(5)
    ).with_timestamp_assigner(SecondField())
    stream = env.from_collection(
        data, type_info=Types.TUPLE([Types.LONG(), Types.LONG(), Types.DOUBLE()])
    ).assign_timestamps_and_watermarks(watermarks)
    keyed = stream.key_by(lambda t: t[0], key_type=Types.LONG())
    keyed.process(Sorter(), output_type=Types.STRING()).print()
    keyed.process(ExpiringDetector(), output_type=Types.STRING()).print()
    env.execute("event time")


if __name__ == "__main__":
    main()
