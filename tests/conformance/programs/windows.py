# mypy: disallow-subclassing-any=False
"""Windows are outside fraudstream's subset: it refuses them at import, Flink runs them."""

from pyflink.common import Duration, Time, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.window import TumblingEventTimeWindows


class First(TimestampAssigner):
    def extract_timestamp(self, value: tuple[str, int], record_timestamp: int) -> int:
        return value[1]


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(0)
    ).with_timestamp_assigner(First())
    stream = env.from_collection(
        [("a", 1), ("a", 4), ("b", 2), ("a", 12)], Types.TUPLE([Types.STRING(), Types.LONG()])
    ).assign_timestamps_and_watermarks(strategy)
    stream.key_by(lambda v: v[0]).window(TumblingEventTimeWindows.of(Time.milliseconds(10))).reduce(
        lambda a, b: (a[0], a[1] + b[1])
    ).map(lambda v: f"window {v[0]} {v[1]}", output_type=Types.STRING()).print()
    env.execute("windows")


if __name__ == "__main__":
    main()
