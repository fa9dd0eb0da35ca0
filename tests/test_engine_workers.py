"""Parallel instances in worker processes give the results of one process."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _engine_jobs import FileCommitSink, LockstepSource
from fraudstream.common import Duration, Types, WatermarkStrategy
from fraudstream.datastream import (
    KeyedBroadcastProcessFunction,
    KeyedProcessFunction,
    MapStateDescriptor,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend
from fraudstream.exceptions import ConfigurationError, JobFailedError
from fraudstream.fraud.tutorial import build_tutorial_job
from fraudstream.runtime.keygroups import assign_to_key_group, operator_index_for_key_group
from fraudstream.testing import CapturingSink

DATA = [((i * 7919) % 97, i, 0.5 if i % 4 == 0 else 700.0) for i in range(20_000)]


def environment(parallelism: int, workers: int) -> StreamExecutionEnvironment:
    env = StreamExecutionEnvironment.get_execution_environment()
    return env.set_parallelism(parallelism).set_worker_processes(workers).set_batch_size(256)


def tutorial(tmp_path: Path, parallelism: int, workers: int, source: Any = None) -> Counter[str]:
    env = environment(parallelism, workers)
    sink = FileCommitSink(tmp_path / f"out-{parallelism}-{workers}-{source is not None}")
    stream = (
        env.from_collection(DATA)
        if source is None
        else env.from_source(source, WatermarkStrategy.no_watermarks(), "tx")
    )
    build_tutorial_job(stream).map(str).sink_to(sink)
    env.execute()
    return Counter(sink.results())


@pytest.mark.parametrize("parallelism", [2, 3])
def test_key_by_across_workers_equals_one_process(tmp_path: Path, parallelism: int) -> None:
    expected = tutorial(tmp_path, 1, 1)
    assert sum(expected.values()) > 0
    assert tutorial(tmp_path, parallelism, parallelism) == expected
    # Every worker reads its share of a parallel source.
    parallel = LockstepSource(DATA, every=10**9)
    assert tutorial(tmp_path, parallelism, parallelism, parallel) == expected


def test_capturing_sink_collects_from_worker_processes(tmp_path: Path) -> None:
    # The public testing sink runs in the job's own process: a job in workers fills it
    # (it stayed empty, its writers' lists left in the workers, before it said so).
    expected = tutorial(tmp_path, 1, 1)

    def run(abort_at: int | None, sink: CapturingSink, restore: bool) -> None:
        env = environment(2, 2)
        env.enable_checkpointing(1)
        env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path / "chk"))
        if restore:
            env.restore_from("latest")
        source = LockstepSource(DATA, every=2500, abort_at=abort_at, readers=1)
        stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").uid("tx")
        build_tutorial_job(stream).map(str).uid("fmt").sink_to(sink)
        env.execute()

    plain = CapturingSink()
    env = environment(2, 2)
    build_tutorial_job(env.from_collection(DATA)).map(str).sink_to(plain)
    env.execute()
    assert Counter(plain.results) == expected
    # Exactly once, across a failure: committed output of the failed run plus the resumed.
    sink = CapturingSink()
    with pytest.raises(JobFailedError, match="aborted at record"):
        run(12_000, sink, restore=False)
    assert 0 < len(sink.results) < sum(expected.values())
    run(None, sink, restore=True)
    assert Counter(sink.results) == expected


class Threshold(KeyedBroadcastProcessFunction):
    """Alerts on amounts above the broadcast threshold for the key's group."""

    def __init__(self) -> None:
        self.rules = MapStateDescriptor("rules", Types.STRING(), Types.FLOAT())

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        limit = ctx.get_broadcast_state(self.rules).get("limit")
        if limit is not None and value[2] > limit:
            yield (value[0], value[1], value[2], limit)

    def process_broadcast_element(self, value: Any, ctx: Any) -> None:
        ctx.get_broadcast_state(self.rules).put("limit", value)


def test_broadcast_reaches_every_worker(tmp_path: Path) -> None:
    def run(parallelism: int) -> Counter[str]:
        env = environment(parallelism, parallelism)
        sink = FileCommitSink(tmp_path / f"b{parallelism}")
        rules = env.from_collection([600.0]).broadcast(Threshold().rules)
        env.from_collection(DATA).key_by(lambda t: t[0]).connect(rules).process(Threshold()).map(
            str
        ).sink_to(sink)
        env.execute()
        return Counter(sink.results())

    # Which transactions an instance sees before the rule is a race in Flink too; what
    # counts is that every instance got the rule and applies it.
    one, two = run(1), run(2)
    alerts = [eval(text) for text in two]
    assert set(two) <= set(one) and len(alerts) > 0
    assert all(amount > limit for _, _, amount, limit in alerts)
    instances = {
        operator_index_for_key_group(assign_to_key_group(key, 128), 128, 2) for key, *_ in alerts
    }
    assert instances == {0, 1}


class EventTimeCount(KeyedProcessFunction):
    """At ``t + 100`` after each event, counts the key's events with time <= that timer.

    The output depends only on event times, provided that no event arrives behind the
    watermark: with watermarks taken as the minimum over all channels, none does.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        self.seen = runtime_context.get_map_state(
            MapStateDescriptor("seen", Types.LONG(), Types.LONG())
        )

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        timestamp = value[1]
        if timestamp <= ctx.timer_service().current_watermark():
            yield ("late", value)
        self.seen.put(timestamp, 1)
        ctx.timer_service().register_event_time_timer(timestamp + 100)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        count = sum(1 for t, _ in self.seen.items() if t <= timestamp)
        yield (ctx.get_current_key(), timestamp, count)


class ByTimestamp:
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[1])


def test_watermarks_are_the_minimum_over_workers(tmp_path: Path) -> None:
    def run(parallelism: int) -> Counter[str]:
        env = environment(parallelism, parallelism)
        sink = FileCommitSink(tmp_path / f"w{parallelism}")
        strategy = WatermarkStrategy.for_bounded_out_of_orderness(
            Duration.of_millis(0)
        ).with_timestamp_assigner(ByTimestamp())  # type: ignore[arg-type]
        source = LockstepSource(DATA, every=10**9)
        env.from_source(source, strategy, "tx").key_by(lambda t: t[0]).process(
            EventTimeCount()
        ).map(str).sink_to(sink)
        env.execute()
        return Counter(sink.results())

    expected = run(1)
    assert len(expected) == len(DATA)  # one timer per event, none late
    assert run(2) == expected


class Fails(KeyedProcessFunction):
    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        if value[1] == 12_345:
            raise ValueError("no such account")
        yield value


def test_a_failure_in_a_worker_stops_the_job_naming_operator_and_record(tmp_path: Path) -> None:
    env = environment(2, 2)
    env.from_collection(DATA).key_by(lambda t: t[0]).process(Fails()).name("checker").sink_to(
        FileCommitSink(tmp_path)
    )
    with pytest.raises(JobFailedError, match="no such account") as info:
        env.execute()
    assert "checker" in str(info.value)
    assert "12345" in str(info.value)


def checkpointed(
    directory: Path,
    out: Path,
    parallelism: int,
    abort_at: int | None,
    restore: bool,
    backend: str,
) -> list[Any]:
    env = environment(parallelism, parallelism)
    env.enable_checkpointing(1)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(directory))
    if backend == "rocksdb":
        env.set_state_backend(EmbeddedRocksDBStateBackend())
    if restore:
        env.restore_from("latest")
    sink = FileCommitSink(out)
    source = LockstepSource(DATA[:3000], every=250, abort_at=abort_at, readers=1)
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").uid("tx")
    build_tutorial_job(stream).map(str).uid("fmt").sink_to(sink)
    try:
        env.execute()
    except JobFailedError as exc:
        assert abort_at is not None and "aborted at record" in str(exc)
    return sink.results()


def abort_and_resume(base: Path, abort_at: int, before: int, after: int, backend: str) -> bool:
    """Crash at ``abort_at`` with ``before`` workers, resume with ``after``: same output?"""
    expected = checkpointed(base / "plain-chk", base / "plain-out", 1, None, False, "memory")
    checkpointed(base / "chk", base / "out", before, abort_at, False, backend)
    restore = any((base / "chk").glob("chk-*"))
    combined = checkpointed(base / "chk", base / "out", after, None, restore, backend)
    return len(expected) > 0 and Counter(combined) == Counter(expected)


@settings(max_examples=8, deadline=None)
@given(
    abort_at=st.integers(min_value=1, max_value=2999),
    before=st.sampled_from([1, 2]),
    after=st.sampled_from([1, 2]),
)
def test_abort_and_resume_across_workers_equals_an_uninterrupted_run(
    tmp_path_factory: pytest.TempPathFactory, abort_at: int, before: int, after: int
) -> None:
    assert abort_and_resume(tmp_path_factory.mktemp("run"), abort_at, before, after, "memory")


def test_abort_and_resume_with_rocksdb_in_workers(tmp_path: Path) -> None:
    # RocksDB must not have been opened in the forking process (its threads do not
    # survive fork), and this test process may have: run in a fresh interpreter.
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from test_engine_workers import abort_and_resume;"
        "base = Path(sys.argv[2]);"
        "print(all(abort_and_resume(base / str(i), a, 2, b, 'rocksdb')"
        " for i, (a, b) in enumerate([(700, 2), (1900, 1)])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == "True", done.stderr[-3000:]


def test_rocksdb_in_workers_is_refused_after_rocksdb_was_opened_here(tmp_path: Path) -> None:
    from fraudstream.state.rocksdb import RocksDBKeyedStateBackend

    RocksDBKeyedStateBackend(directory=str(tmp_path / "x")).close()
    with pytest.raises(ConfigurationError, match="fork"):
        checkpointed(tmp_path / "chk", tmp_path / "out", 2, None, False, "rocksdb")


def test_a_worker_that_cannot_be_forked_fails_the_job_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import multiprocessing
    import os

    process_class = multiprocessing.get_context("fork").Process
    start = process_class.start
    started = 0

    def start_or_fail(self: Any) -> None:
        # Fails before os.fork: when os.fork itself fails, CPython's popen_fork has
        # opened two pipes of its own, which it leaves open (not ours to close).
        nonlocal started
        started += 1
        if started == 2:  # the first worker forks, the second cannot
            raise OSError(11, "Resource temporarily unavailable")
        start(self)

    monkeypatch.setattr(process_class, "start", start_or_fail)
    before = set(os.listdir("/proc/self/fd"))
    env = environment(3, 3)
    build_tutorial_job(env.from_collection(DATA)).sink_to(FileCommitSink(tmp_path / "out"))
    with pytest.raises(OSError, match="temporarily unavailable"):
        env.execute()
    assert started == 2
    assert multiprocessing.active_children() == []  # the forked worker is stopped
    assert set(os.listdir("/proc/self/fd")) == before  # and no pipe end stays open
