"""Abort-and-resume: a job restored from its last checkpoint ends as if never interrupted."""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.common import WatermarkStrategy
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend
from fraudstream.exceptions import CheckpointError, JobFailedError
from fraudstream.fraud.tutorial import build_tutorial_job
from fraudstream.runtime.checkpoints import CheckpointStorage
from fraudstream.testing import (
    Abort,
    AdvanceProcessingTime,
    CapturingSink,
    ManualClock,
    ScriptedSource,
)

TRANSACTIONS = [((i * 7919) % 23, i, 0.5 if i % 3 == 0 else 600.0) for i in range(300)]


def script(abort_at: int | None) -> list[Any]:
    steps: list[Any] = []
    for i, tx in enumerate(TRANSACTIONS):
        if i % 25 == 0:
            steps.append(AdvanceProcessingTime(1000))  # a checkpoint is due after each of these
        if abort_at is not None and i == abort_at:
            steps.append(Abort())
        steps.append(tx)
    return steps


def run(
    steps: list[Any],
    checkpoint_dir: Path,
    parallelism: int,
    restore: bool,
    sink: CapturingSink | None = None,
    backend: str = "memory",
) -> list[Any]:
    """Run the job; ``sink`` is the external system, shared by a run and its resumption."""
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    if backend == "rocksdb":
        env.set_state_backend(EmbeddedRocksDBStateBackend())
    env.set_processing_time_clock(clock).set_parallelism(parallelism).set_batch_size(8)
    env.enable_checkpointing(1000)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(checkpoint_dir))
    if restore:
        env.restore_from("latest")
    sink = sink if sink is not None else CapturingSink()
    source = ScriptedSource(steps, clock)
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").uid("tx")
    build_tutorial_job(stream).map(str).uid("fmt").sink_to(sink)
    with contextlib.suppress(JobFailedError):
        env.execute()
    return sink.results


@settings(max_examples=30, deadline=None)
@given(
    abort_at=st.integers(min_value=1, max_value=len(TRANSACTIONS) - 1),
    parallelism=st.sampled_from([1, 2]),
    backend=st.sampled_from(["memory", "rocksdb"]),
    resume_parallelism=st.sampled_from([1, 2]),
)
def test_abort_and_resume_equals_an_uninterrupted_run(
    tmp_path_factory: pytest.TempPathFactory,
    abort_at: int,
    parallelism: int,
    backend: str,
    resume_parallelism: int,
) -> None:
    expected = run(script(None), tmp_path_factory.mktemp("plain"), parallelism, restore=False)
    directory = tmp_path_factory.mktemp("chk")
    output = CapturingSink()
    run(script(abort_at), directory, parallelism, restore=False, sink=output, backend=backend)
    restore = any(directory.glob("chk-*"))  # else a fresh start is the right recovery
    # The resumed run sees the same input; the crash (Abort) it recovers from is not repeated.
    # It may run with another parallelism: key groups are redistributed.
    steps = script(abort_at) if restore else script(None)
    combined = run(
        steps, directory, resume_parallelism, restore=restore, sink=output, backend=backend
    )
    assert Counter(combined) == Counter(expected)
    assert len(expected) > 0


def test_corrupted_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path, retained=3)
    storage.write(1, {"operators": {}, "n": 1})
    newest = storage.write(2, {"operators": {}, "n": 2})
    (newest / "state.bin").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="corrupted"):
        loaded = storage.latest()
    assert loaded is not None and loaded.payload["n"] == 1


def test_truncated_checkpoint_is_detected(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    path = storage.write(1, {"operators": {}, "data": list(range(1000))})
    data = (path / "state.bin").read_bytes()
    (path / "state.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        CheckpointStorage.load(path)


def test_only_the_last_checkpoints_are_retained(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path, retained=2)
    for n in range(1, 6):
        storage.write(n, {"operators": {}})
    assert sorted(p.name for p in tmp_path.glob("chk-*")) == ["chk-4", "chk-5"]


def test_restoring_a_job_with_unknown_operators_names_them(tmp_path: Path) -> None:
    run(script(None), tmp_path, 1, restore=False)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path))
    env.restore_from("latest")
    env.from_collection([1]).uid("other").print()
    with pytest.raises(CheckpointError, match="fraud-detector"):
        env.execute()
    shutil.rmtree(tmp_path)


def test_a_damaged_state_file_makes_the_checkpoint_fall_back(tmp_path: Path) -> None:
    run(script(None), tmp_path, 2, restore=False, backend="rocksdb")
    storage = CheckpointStorage(tmp_path)
    newest = max(tmp_path.glob("chk-*"), key=lambda p: int(p.name[4:]))
    state_file = next(newest.glob("keyed-*.kv"))
    state_file.write_bytes(state_file.read_bytes()[:-1])
    with pytest.warns(RuntimeWarning, match="state file"):
        loaded = storage.latest()
    assert loaded is not None and loaded.path != newest


class CommitCountingSink(CapturingSink):
    """A :class:`CapturingSink` that also counts how often each committable is committed."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: Counter[Any] = Counter()

    def _publish(self, token: tuple[int, int, int], records: list[Any]) -> None:
        with self._lock:
            self.commits[token] += 1
        super()._publish(token, records)


@pytest.mark.parametrize(("parallelism", "resume_parallelism"), [(2, 2), (2, 1), (1, 2), (2, 3)])
def test_each_restored_committable_is_committed_again_by_exactly_one_instance(
    tmp_path: Path, parallelism: int, resume_parallelism: int
) -> None:
    # Two instances committing the same committable at once race in a sink whose commit is
    # idempotent only one call at a time (rename a staged file if it is still there).
    sink = CommitCountingSink()
    run(script(160), tmp_path, parallelism, restore=False, sink=sink)
    first_run = Counter(sink.commits)
    run(script(160), tmp_path, resume_parallelism, restore=True, sink=sink)
    again = {token: sink.commits[token] - n for token, n in first_run.items()}
    again = {token: n for token, n in again.items() if n}
    assert {subtask for _run, subtask, _checkpoint in again} == set(range(parallelism))
    assert set(again.values()) == {1}
    assert Counter(sink.results) == Counter(run(script(None), tmp_path / "plain", 1, False))


def test_a_job_restored_into_a_new_directory_numbers_its_checkpoints_after_the_restored_one(
    tmp_path: Path,
) -> None:
    # The Kafka sink keeps, per transactional id, the last checkpoint id it committed:
    # ids starting again at 1 would look committed already, and their records be dropped.
    run(script(None), tmp_path / "first", 1, restore=False)
    newest = max(int(p.name[4:]) for p in (tmp_path / "first").glob("chk-*"))
    assert newest > 3
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock).set_batch_size(8).enable_checkpointing(1000)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path / "second"))
    env.restore_from(str(tmp_path / "first" / f"chk-{newest}"))
    source = ScriptedSource(script(None), clock)
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").uid("tx")
    build_tutorial_job(stream).map(str).uid("fmt").sink_to(CapturingSink())
    env.execute()
    ids = sorted(int(p.name[4:]) for p in (tmp_path / "second").glob("chk-*"))
    assert ids and ids[0] > newest


@pytest.mark.parametrize("parallelism", [1, 2, 3])
def test_sink_snapshots_of_an_older_version_are_shared_out_by_their_place(
    parallelism: int,
) -> None:
    from fraudstream.runtime.operators.base import TaskInfo
    from fraudstream.runtime.operators.sinks import ConnectorSinkOperator

    # Snapshots written before they named their subtask, by 2 instances.
    legacy = [{"committables": ["sealed by 0"]}, {"committables": ["sealed by 1", "final of 1"]}]
    taken = []
    for index in range(parallelism):
        operator = ConnectorSinkOperator("out", None, CapturingSink(), exactly_once=True)
        operator.setup(TaskInfo(subtask_index=index, parallelism=parallelism))
        operator.restore_state(legacy)
        assert operator._restored_all == ["sealed by 0", "sealed by 1", "final of 1"]
        taken.extend(operator._restored)
    assert sorted(taken) == ["final of 1", "sealed by 0", "sealed by 1"]  # each once


def test_every_writer_of_a_restored_sink_learns_the_instances_of_the_old_run(
    tmp_path: Path,
) -> None:
    from fraudstream.connectors.base import Sink, SinkWriter, WriterContext
    from fraudstream.runtime.operators.base import TaskInfo
    from fraudstream.runtime.operators.sinks import ConnectorSinkOperator

    # A transactional sink restored at a lower parallelism fences the removed writers'
    # producers: the writer standing in for old instance j must know that j existed.
    contexts: list[WriterContext] = []

    class Recording(SinkWriter[Any]):
        def open(self, context: WriterContext) -> None:
            contexts.append(context)

        def write(self, values: Any) -> None:
            pass

    class RecordingSink(Sink[Any]):
        def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
            return Recording()

    old_run: list[dict[str, Any]] = [{"committables": [], "subtask": j} for j in (2, 0, 1)]
    older_version: list[dict[str, Any]] = [{"committables": []} for _ in range(3)]
    for snapshots in (old_run, older_version):  # the latter named by their place
        for index in range(2):
            operator = ConnectorSinkOperator("out", None, RecordingSink(), exactly_once=True)
            operator.setup(TaskInfo(index, 2, restore_dir=str(tmp_path)))
            operator.restore_state(snapshots)
            operator.open()
    assert [sorted(c.restored_subtasks) for c in contexts] == [[0, 1, 2]] * 4
    assert [c.restored for c in contexts] == [True] * 4


def test_a_job_restored_without_a_checkpoint_directory_numbers_after_the_restored_one(
    tmp_path: Path,
) -> None:
    first = CommitCountingSink()
    run(script(60), tmp_path, 1, restore=False, sink=first)  # aborted
    newest = max(int(p.name[4:]) for p in tmp_path.glob("chk-*"))
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock).set_batch_size(8).enable_checkpointing(1000)
    env.restore_from(str(tmp_path / f"chk-{newest}"))  # no checkpoint directory of its own
    sink = CommitCountingSink()
    source = ScriptedSource(script(None), clock)
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").uid("tx")
    build_tutorial_job(stream).map(str).uid("fmt").sink_to(sink)
    env.execute()
    earlier = {writer for writer, _subtask, _checkpoint in first.commits}
    ids = {checkpoint for writer, _subtask, checkpoint in sink.commits if writer not in earlier}
    assert ids and min(ids) > newest  # (what it commits again keeps its old id)


def checkpointing_env(directory: Path, parallelism: int, restore: bool) -> Any:
    """An environment checkpointing into ``directory`` (its final checkpoint at the end of
    input), restored from its latest checkpoint when ``restore``."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism).enable_checkpointing(60_000)
    env.get_checkpoint_config().set_checkpoint_storage_dir(str(directory))
    if restore:
        env.restore_from("latest")
    return env


@pytest.mark.parametrize("then", [1, 3])
def test_a_source_whose_positions_belong_to_its_readers_keeps_their_number(
    tmp_path: Path, then: int
) -> None:
    from fraudstream.connectors.generator import TransactionGenerator

    sink = CapturingSink()  # one sink over the runs: a commit made again is not new output

    def run(parallelism: int, restore: bool) -> None:
        env = checkpointing_env(tmp_path, parallelism, restore)
        source = TransactionGenerator(seed=1, count=5000)
        env.from_source(source, WatermarkStrategy.no_watermarks(), "tx").uid("tx").map(
            lambda t: t.transaction_id
        ).uid("id").sink_to(sink).uid("out")
        env.execute()

    run(2, restore=False)
    first = Counter(sink.results)
    assert len(first) == 5000
    with pytest.raises(CheckpointError, match=f"with 2 readers and cannot be restored with {then}"):
        run(then, restore=True)
    run(2, restore=True)  # at its end already: nothing again
    assert Counter(sink.results) == first


def test_a_source_of_one_reader_restores_at_any_parallelism(tmp_path: Path) -> None:
    sink = CapturingSink()

    def run(parallelism: int, restore: bool) -> None:
        env = checkpointing_env(tmp_path, parallelism, restore)
        env.from_collection([1, 2, 3]).uid("numbers").map(lambda n: n * 2).uid("double").sink_to(
            sink
        ).uid("out")
        env.execute()

    run(1, restore=False)
    run(2, restore=True)  # one reader before and after, at its end: nothing again
    assert sorted(sink.results) == [2, 4, 6]


def test_checkpoints_are_paced_by_interval_duration_and_min_pause() -> None:
    from fraudstream.runtime.checkpoints import next_checkpoint_due

    assert next_checkpoint_due(0, 10, 1000, 0) == 1000  # quick: every interval from the start
    assert next_checkpoint_due(0, 1500, 1000, 0) == 3000  # took 1.5 s: as long again for records
    assert next_checkpoint_due(0, 10, 1000, 5000) == 5010  # the min pause after its end


@pytest.mark.parametrize(("min_pause", "most"), [(0, None), (1000, 7)])
def test_the_min_pause_between_checkpoints_is_kept(
    tmp_path: Path, min_pause: int, most: int | None
) -> None:
    clock = ManualClock(0)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_processing_time_clock(clock).set_batch_size(1).enable_checkpointing(100)
    config = env.get_checkpoint_config().set_checkpoint_storage_dir(str(tmp_path))
    config.set_min_pause_between_checkpoints(min_pause)
    steps: list[Any] = []
    for n in range(50):  # 5 s of processing time, a record every 100 ms
        steps += [AdvanceProcessingTime(100), n]
    env.from_source(ScriptedSource(steps, clock), WatermarkStrategy.no_watermarks(), "n").uid(
        "n"
    ).sink_to(CapturingSink()).uid("out")
    env.execute()
    taken = max(int(p.name[4:]) for p in tmp_path.glob("chk-*"))  # ids count them all
    if most is None:
        assert taken >= 45  # one per interval
    else:
        assert 4 <= taken <= most  # one per second and the final one
