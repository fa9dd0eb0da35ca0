"""Checkpoints: throughput with checkpoints every second vs none, and the cost of 1M keys.

    python bench/checkpoints.py [--events N] [--keys K] [--json FILE]

1. The tutorial job (source -> key_by -> FraudDetector -> counting sink, in one process)
   over N events (a 1M-tuple list taken round and round), without checkpoints and with a
   checkpoint every 1000 ms into a local directory, for the memory and RocksDB state
   backends: events/s and the loss against no checkpoints (target < 10%).
2. A job holding K keys of keyed state (one value per key): the duration and on-disk size
   of one checkpoint of it, for both backends.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import tutorial_transactions
from _engine_bench import CountingSink, CyclingSource, HoldingSource


def environment(backend: str) -> Any:
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend

    env = StreamExecutionEnvironment.get_execution_environment()
    if backend == "rocksdb":
        env.set_state_backend(EmbeddedRocksDBStateBackend())
    return env


def throughput(
    data: list[Any], events: int, backend: str, interval_ms: int | None
) -> dict[str, Any]:
    """One run of the tutorial job; events/s and checkpoint figures."""
    from fraudstream.common import WatermarkStrategy
    from fraudstream.fraud.tutorial import build_tutorial_job

    env = environment(backend)
    with tempfile.TemporaryDirectory() as directory:
        if interval_ms is not None:
            env.enable_checkpointing(interval_ms)
            env.get_checkpoint_config().set_checkpoint_storage_dir(directory)
        stream = env.from_source(
            CyclingSource(data, events), WatermarkStrategy.no_watermarks(), "tx"
        )
        build_tutorial_job(stream).sink_to(CountingSink())
        started = time.perf_counter()
        client = env.execute_async("bench-checkpoints")
        client.get_job_execution_result().result()
        elapsed = time.perf_counter() - started
        stats = client.get_checkpoint_stats()
    return {"events_per_s": events / elapsed, "seconds": elapsed, **stats}


def state_checkpoint(keys: int, backend: str) -> dict[str, Any]:
    """Duration and size of one checkpoint (a savepoint) of ``keys`` keys of value state."""
    from fraudstream.common import Types, WatermarkStrategy
    from fraudstream.datastream import KeyedProcessFunction, RuntimeContext, ValueStateDescriptor

    class Remember(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.last = runtime_context.get_state(ValueStateDescriptor("last", Types.FLOAT()))

        def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
            self.last.update(value[1])
            yield from ()

    env = environment(backend)
    source = HoldingSource(keys)
    with tempfile.TemporaryDirectory() as directory:
        env.enable_checkpointing(3_600_000)  # only the savepoint below
        env.get_checkpoint_config().set_checkpoint_storage_dir(directory)
        env.from_source(source, WatermarkStrategy.no_watermarks(), "keys").key_by(
            lambda v: v[0]
        ).process(Remember()).sink_to(CountingSink())
        started = time.perf_counter()
        client = env.execute_async("bench-state")
        source.emitted.wait()
        loaded = time.perf_counter() - started
        client.trigger_savepoint()
        while client.get_checkpoint_stats()["completed"] < 1:
            time.sleep(0.01)
        stats = client.get_checkpoint_stats()
        source.release()
        client.get_job_execution_result().result()
    return {"load_seconds": loaded, **stats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4_000_000)
    parser.add_argument("--rocksdb-events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs")
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()
    data = tutorial_transactions(1_000_000)
    results: dict[str, Any] = {"events": args.events, "keys": args.keys, "throughput": []}
    print(
        f"tutorial job, {args.events:,} events ({args.rocksdb_events:,} with RocksDB), "
        f"one process, best of {args.repeat}"
    )
    print(
        f"{'backend':<10}{'checkpoints':<14}{'events/s':>12}{'loss':>8}{'taken':>7}"
        f"{'last ms':>9}{'last KB':>9}"
    )
    for backend in ("memory", "rocksdb"):
        events = args.events if backend == "memory" else args.rocksdb_events

        def best(interval: int | None, backend: str = backend, events: int = events) -> Any:
            runs = [throughput(data, events, backend, interval) for _ in range(args.repeat)]
            return max(runs, key=lambda r: r["events_per_s"])

        off, every = best(None), best(1000)
        loss = 1 - every["events_per_s"] / off["events_per_s"]
        for label, row in (("off", off), ("every 1 s", every)):
            shown = f"{loss:>8.1%}" if row is every else f"{'':>8}"
            print(
                f"{backend:<10}{label:<14}{row['events_per_s']:>12,.0f}{shown}"
                f"{row['completed']:>7}{row['last_duration_ms']:>9}{row['last_size'] / 1e3:>9.0f}"
            )
        results["throughput"].append(
            {"backend": backend, "off": off, "every_1s": every, "loss": loss}
        )
    print(f"\none checkpoint of {args.keys:,} keys of value state")
    print(f"{'backend':<10}{'duration ms':>12}{'size MB':>10}{'load s':>8}")
    results["state"] = []
    for backend in ("memory", "rocksdb"):
        row = state_checkpoint(args.keys, backend)
        print(
            f"{backend:<10}{row['last_duration_ms']:>12}{row['last_size'] / 1e6:>10.1f}"
            f"{row['load_seconds']:>8.1f}"
        )
        results["state"].append({"backend": backend, **row})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
