# mypy: disallow-subclassing-any=False
"""The tutorial benchmark's PyFlink peer: the same detector on Apache Flink, thread mode.

    .venv-flink/bin/python bench/peers/pyflink_tutorial.py --events 100000

Run by ``bench/tutorial.py --peers`` with the Flink environment's interpreter. It builds
the same ``(account_id, timestamp, amount)`` tuples as every other engine (``_data.py``),
runs source -> key_by -> FraudDetector -> collect on a local mini cluster with Python
functions in thread mode, and prints one JSON line: events, seconds (the best of
``--repeat`` job runs in one JVM, job submission to last result) and alerts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import tutorial_transactions


def run_once(data: list[tuple[int, int, float]]) -> tuple[float, int]:
    """One job over ``data``: (seconds, alerts)."""
    from pyflink.common import Configuration, Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
    from pyflink.datastream.state import ValueStateDescriptor

    class FraudDetector(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.flag = runtime_context.get_state(ValueStateDescriptor("flag", Types.BOOLEAN()))

        def process_element(self, value: Any, ctx: Any) -> Iterator[int]:
            amount = value[2]
            if self.flag.value() is not None:
                if amount > 500.0:
                    yield value[0]
                self.flag.clear()
            if amount < 1.0:
                self.flag.update(True)

    config = Configuration()
    config.set_string("python.execution-mode", "thread")
    config.set_string("python.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(1)
    stream = env.from_collection(
        data, type_info=Types.TUPLE([Types.LONG(), Types.LONG(), Types.DOUBLE()])
    )
    alerts = stream.key_by(lambda t: t[0], key_type=Types.LONG()).process(
        FraudDetector(), output_type=Types.LONG()
    )
    started = time.perf_counter()
    with alerts.execute_and_collect("bench-tutorial") as results:
        count = sum(1 for _ in results)
    return time.perf_counter() - started, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    # Flink starts its Python workers as `python` from PATH: make it this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    data = tutorial_transactions(args.events)
    runs = [run_once(data) for _ in range(max(args.repeat, 1))]
    seconds, alerts = min(runs)
    print(json.dumps({"events": args.events, "seconds": seconds, "alerts": alerts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
