# mypy: disallow-subclassing-any=False
"""``ctx.timestamp()`` of records that carry no timestamp (no watermark strategy)."""

from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.functions import KeyedProcessFunction, ProcessFunction


class Stamp(ProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        yield f"process {value} ts={ctx.timestamp()}"


class KeyedStamp(KeyedProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Iterator[str]:
        yield f"keyed {value} ts={ctx.timestamp()}"


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    stream = env.from_collection([1, 2, 3], type_info=Types.INT())
    stream.process(Stamp(), output_type=Types.STRING()).print()
    stream.key_by(lambda v: v % 2).process(KeyedStamp(), output_type=Types.STRING()).print()
    env.execute("no timestamps")


if __name__ == "__main__":
    main()
