"""In-process connectors stay in the job's process while the windows run in worker processes.

A ``QueueSource`` fed by this test's thread and a ``CallbackSink`` calling back into it run
in the driver (a thread of the job's process); the keyed operators between them run in
forked workers. What the callback receives must equal a one-process run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fraudstream.common import Types, WatermarkStrategy
from fraudstream.connectors.inprocess import CallbackSink, QueueSource
from fraudstream.datastream import (
    KeyedProcessFunction,
    RuntimeContext,
    StreamExecutionEnvironment,
    ValueStateDescriptor,
)
from fraudstream.exceptions import JobFailedError

RECORDS = [(i % 37, i) for i in range(3000)]


class RunningCount(KeyedProcessFunction):
    """Emits ``(key, count so far, pid)`` for every record of a key."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        yield value[0], count, os.getpid()


class Collected:
    """What the callback received (from the driver thread), read by the test thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.lock = threading.Lock()
        self.threads: set[str] = set()

    def __call__(self, batch: Sequence[Any]) -> None:
        with self.lock:
            self.items.extend(batch)
            self.threads.add(threading.current_thread().name)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.items) >= count:
                    return list(self.items)
            time.sleep(0.01)  # polling the callback's progress, with a timeout
        raise AssertionError(f"only {len(self.items)} of {count} records arrived")


def build(env: StreamExecutionEnvironment, queue: QueueSource[Any], collected: Collected) -> None:
    (
        env.from_source(queue, WatermarkStrategy.no_watermarks(), "queue")
        .uid("queue")
        .key_by(lambda r: r[0])
        .process(RunningCount())
        .uid("count")
        .sink_to(CallbackSink(collected))
        .set_parallelism(1)
    )


def run(
    workers: int, records: list[Any], checkpoint_dir: Path | None = None, restore: bool = False
) -> Collected:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(max(workers, 1)).set_worker_processes(workers).set_batch_size(64)
    if checkpoint_dir is not None:
        env.enable_checkpointing(50)
        env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoint_dir))
        if restore:
            env.restore_from("latest")
    queue: QueueSource[Any] = QueueSource()
    collected = Collected()
    build(env, queue, collected)
    client = env.execute_async("driver")
    for record in records:  # fed from this thread while the job runs
        queue.put(record)
    collected.wait_for(len(records))
    queue.close()
    client.get_job_execution_result().result(30)
    return collected


def test_in_process_connectors_run_in_the_driver_beside_worker_processes() -> None:
    expected = run(1, RECORDS)
    two = run(2, RECORDS)
    assert sorted(r[:2] for r in two.items) == sorted(r[:2] for r in expected.items)
    pids = {pid for _, _, pid in two.items}
    assert len(pids) == 2 and os.getpid() not in pids  # the counting ran in two workers
    assert two.threads == {"fraudstream-driver"}  # the callback ran in this process


def test_a_failing_callback_in_the_driver_fails_the_job() -> None:
    def explode(batch: Sequence[Any]) -> None:
        raise ValueError("the web side broke")

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2).set_worker_processes(2)
    queue: QueueSource[Any] = QueueSource(RECORDS[:10])
    env.from_source(queue, WatermarkStrategy.no_watermarks(), "queue").key_by(
        lambda r: r[0]
    ).process(RunningCount()).sink_to(CallbackSink(explode))
    client = env.execute_async("fails")
    with pytest.raises((JobFailedError, ValueError), match="the web side broke"):
        client.get_job_execution_result().result(30)
    queue.close()


def test_driver_and_workers_checkpoint_together_and_restore(tmp_path: Path) -> None:
    first = run(2, RECORDS[:1500], tmp_path)
    assert max(count for _, count, _ in first.items) == 1500 // 37 + 1
    # The restored job continues every key's count where the checkpoint left it.
    second = run(2, RECORDS[1500:], tmp_path, restore=True)
    env_counts: dict[int, int] = {}
    for key, _ in RECORDS:
        env_counts[key] = env_counts.get(key, 0) + 1
    last: dict[int, int] = {}
    for key, count, _ in second.items:
        last[key] = max(last.get(key, 0), count)
    assert last == env_counts
