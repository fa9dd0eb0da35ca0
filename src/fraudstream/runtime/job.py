"""Running a job: compile the graph for every parallel instance, then drive the executor.

With parallelism 1 every operator has one instance and batches cross the job through
direct calls. With parallelism ``p`` each operator has ``p`` instances (sources
limited to fewer, e.g. a collection, have the rest end at once); edges that
partition (key_by, broadcast, rebalance) go through :class:`ExchangeOutput`, which
hands each instance the records of its key groups.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudstream.exceptions import CheckpointError, ConfigurationError
from fraudstream.runtime.checkpoints import (
    STAGING,
    CheckpointStorage,
    DirectoryClaim,
    LoadedCheckpoint,
    next_checkpoint_due,
    state_files_of,
)
from fraudstream.runtime.clock import Clock
from fraudstream.runtime.exchange import ExchangeOutput
from fraudstream.runtime.executor import LocalExecutor
from fraudstream.runtime.gcscope import LongLivedStateGC
from fraudstream.runtime.graph import Transformation
from fraudstream.runtime.operators.base import Channel, Operator, TaskInfo
from fraudstream.runtime.operators.process import UserFunctionOperator
from fraudstream.runtime.operators.sinks import ConnectorSinkOperator
from fraudstream.runtime.operators.sources import SourceOperator
from fraudstream.runtime.plan import JobPlan, reachable, resolve_edges

if TYPE_CHECKING:
    from fraudstream.runtime.workers import ProcessCoordinator

__all__ = ["JobRunner"]

log = logging.getLogger("fraudstream.job")


class JobRunner:
    """Compiles and runs one job."""

    def __init__(
        self,
        nodes: list[Transformation],
        *,
        name: str,
        parallelism: int,
        max_parallelism: int,
        clock: Clock,
        batch_size: int,
        checkpoint_interval_ms: int,
        checkpoint_config: Any,
        state_backend: str,
        job_parameters: dict[str, str],
        restore_from: str | None,
        state_dir: str | None = None,
        worker_processes: int = 1,
        long_lived_state_gc: bool = False,
    ) -> None:
        self.nodes = reachable(nodes)
        self.name = name
        self.job_id = uuid.uuid4().hex
        self.parallelism = parallelism
        self.max_parallelism = max_parallelism
        if parallelism > max_parallelism:
            raise ConfigurationError(
                f"parallelism {parallelism} exceeds max parallelism {max_parallelism}"
            )
        self.clock = clock
        self.batch_size = batch_size
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self.checkpoint_config = checkpoint_config
        self.state_backend = state_backend
        self.job_parameters = job_parameters
        self.restore_from = restore_from
        self.state_dir = state_dir
        self.worker_processes = worker_processes
        #: run under LongLivedStateGC (fewer garbage collections; see runtime.gcscope)
        self.long_lived_state_gc = long_lived_state_gc
        self.restore_dir: str | None = None
        self.restored_id = 0  # the checkpoint restored from: new ones are numbered after it
        self.cancelled = False
        self.executor: LocalExecutor | None = None
        self.plan: JobPlan | None = None
        self.coordinator: CheckpointCoordinator | None = None
        self._claim: DirectoryClaim | None = None  # of the checkpoint directory, while running
        self.processes: ProcessCoordinator | None = None
        self._instances: dict[int, list[Operator]] = {}

    @property
    def instances_by_node(self) -> dict[int, list[Operator]]:
        """The compiled instances of every physical transformation, by node id."""
        return self._instances

    @property
    def workers(self) -> int:
        """How many worker processes run the job (1: everything in this process)."""
        return max(1, min(self.worker_processes, self.parallelism))

    # -- compiling -----------------------------------------------------------------------------
    def instances(self, node: Transformation) -> int:
        """How many parallel instances ``node`` has."""
        count = node.parallelism or self.parallelism
        if node.max_parallelism is not None:
            count = min(count, node.max_parallelism)
        return max(1, min(count, self.parallelism))

    def compile(self) -> JobPlan:
        """Every instance of every operator, wired."""
        state_dir = self.state_dir
        snapshot_dir = None
        if self.checkpoint_config.storage_dir:
            snapshot_dir = str(Path(self.checkpoint_config.storage_dir) / STAGING)
        instances: dict[int, list[Operator]] = {}
        operators: list[Operator] = []
        sources: list[SourceOperator] = []
        for node in self.nodes:
            if not node.is_physical:
                continue
            assert node.factory is not None
            count = self.instances(node)
            uid = node.uid or f"{node.name}-{node.id}"
            made = []
            for index in range(count):
                operator = node.factory(node.name, uid)
                if index > 0 and isinstance(operator, UserFunctionOperator):
                    # Each parallel instance gets its own copy of the user's function, as
                    # Flink deserializes one per subtask: state handles set in open() differ.
                    operator.function = copy.deepcopy(operator.function)
                operator.task = TaskInfo(
                    subtask_index=index,
                    parallelism=count,
                    max_parallelism=self.max_parallelism,
                    clock_ms=self.clock.now_ms,
                    job_parameters=self.job_parameters,
                    state_backend=self.state_backend,
                    state_dir=state_dir,
                    snapshot_dir=snapshot_dir,
                    final_checkpoint=snapshot_dir is not None,
                )
                made.append(operator)
                operators.append(operator)
                if isinstance(operator, SourceOperator):
                    sources.append(operator)
            instances[node.id] = made
        if not sources:
            raise ConfigurationError(
                "the job has no source: create a stream with from_collection or from_source"
            )
        self._check_uids()
        edges = resolve_edges(self.nodes)
        for edge in edges:
            ups = instances[edge.upstream.id]
            downs = instances[edge.downstream.id]
            partitioning = edge.partitioning
            if partitioning == "forward" and len(ups) != len(downs):
                partitioning = "rebalance"  # as Flink does when parallelism changes
            for up_index, upstream in enumerate(ups):
                if partitioning == "forward" or (len(downs) == 1 and partitioning != "broadcast"):
                    target = downs[up_index] if partitioning == "forward" else downs[0]
                    channel: Any = Channel(target, edge.input_no, target.add_input_channel())
                else:
                    channels = [Channel(d, edge.input_no, d.add_input_channel()) for d in downs]
                    channel = ExchangeOutput(
                        channels, partitioning, edge.key_selector, self.max_parallelism, up_index
                    )
                if edge.side_tag is None:
                    upstream.out.main.append(channel)
                else:
                    upstream.out.side.setdefault(edge.side_tag, []).append(channel)
        for operator in operators:
            operator.setup(operator.task)
        by_id = {node_id: ops[0] for node_id, ops in instances.items()}
        self._instances = instances
        return JobPlan(operators, sources, by_id, edges)

    def _check_uids(self) -> None:
        seen: dict[str, str] = {}
        for node in self.nodes:
            if node.is_physical and node.uid is not None:
                if node.uid in seen:
                    raise ConfigurationError(
                        f"uid {node.uid!r} is used by two operators ({seen[node.uid]!r} and "
                        f"{node.name!r}); uids must be unique within a job"
                    )
                seen[node.uid] = node.name

    # -- running -------------------------------------------------------------------------------
    def _prepare(self) -> LocalExecutor:
        plan = self.compile()
        self.plan = plan
        storage, loaded = self._storage_and_checkpoint()
        if loaded is not None:
            self._restore(loaded)
        if storage is not None:
            storage.clear_staging()
        if self.checkpoint_interval_ms > 0 or storage is not None:
            self.coordinator = CheckpointCoordinator(
                storage, self.checkpoint_interval_ms, self.clock.now_ms(), self
            )
        self.executor = LocalExecutor(plan, self.clock, self.batch_size, self.coordinator)
        return self.executor

    def _restore(self, loaded: LoadedCheckpoint) -> None:
        states: dict[str, list[Any]] = loaded.payload["operators"]
        self.restore_dir = str(loaded.path)
        self.restored_id = loaded.checkpoint_id
        for ops in self._instances.values():
            for op in ops:
                op.task.restore_dir = self.restore_dir
        old_parallelism = loaded.payload.get("parallelism", 1)
        known = set()
        for _node_id, ops in self._instances.items():
            uid = ops[0].uid
            known.add(uid)
            saved = states.get(uid)
            if saved is None:
                if any(type(op).snapshot_state is not Operator.snapshot_state for op in ops):
                    log.warning("operator %r has no state in the checkpoint; it starts empty", uid)
                continue
            if isinstance(ops[0], SourceOperator):
                self._restore_source(uid, ops, saved, old_parallelism)
                continue
            present = [s for s in saved if s is not None]
            if present:
                for op in ops:
                    op.restore_state(present)
        missing = sorted(set(states) - known)
        if missing:
            raise CheckpointError(
                f"the checkpoint has state for operator(s) {missing} that this job does not "
                "have: it was taken by another job, or this job's operators have other "
                "uid(...)s than when it was taken"
            )

    @staticmethod
    def _restore_source(
        uid: str, ops: list[Operator], saved: list[Any], old_parallelism: int
    ) -> None:
        """Each reader's position; redistributed when the number of readers changed.

        A source read by at most ``max_parallelism`` readers keeps that number at any
        higher parallelism. Otherwise the source redistributes its positions (Kafka
        partitions move between readers), or is restored with its number of readers.
        """
        source = ops[0].source  # type: ignore[attr-defined]
        limit = source.max_parallelism
        readers = len(ops) if limit is None else min(len(ops), limit)
        old_readers = len(saved) if limit is None else min(len(saved), limit)
        states = list(saved)
        present = [s for s in saved if s is not None]
        if readers != old_readers and present:
            positions = source.redistribute([s["position"] for s in present], readers)
            if positions is None:
                raise CheckpointError(
                    f"source {uid!r} was checkpointed with {old_readers} readers and cannot "
                    f"be restored with {readers}: its positions belong to its readers; "
                    f"restore it with {old_readers} (the job's parallelism then was "
                    f"{old_parallelism})"
                )
            states = [_merged_reader_state(present, position) for position in positions]
        for op in ops:
            index = op.task.subtask_index
            op.restore_state(states[index] if index < len(states) else None)

    def first_checkpoint_id(self, storage: CheckpointStorage | None) -> int:
        """The id of this run's first checkpoint: after the restored one and those stored."""
        if storage is None:
            return self.restored_id + 1
        return storage.next_id(self.restored_id)

    def restore(self, loaded: LoadedCheckpoint) -> None:
        """Give every compiled instance its state from ``loaded`` (before ``open``)."""
        self._restore(loaded)

    def _storage_and_checkpoint(self) -> tuple[CheckpointStorage | None, LoadedCheckpoint | None]:
        storage = None
        if self.checkpoint_config.storage_dir:
            storage = CheckpointStorage(
                self.checkpoint_config.storage_dir, self.checkpoint_config.retained
            )
            self.release_directory()  # a runner started twice claims once
            self._claim = storage.claim()  # before anything in it is read or cleared
        loaded = None
        if self.restore_from:
            if storage is None and self.restore_from == "latest":
                raise CheckpointError("restoring from 'latest' needs a checkpoint directory")
            if storage is not None and self.restore_from == "latest":
                loaded = storage.latest()
                if loaded is None:
                    # A supervisor restarts with --from-checkpoint latest whenever the job
                    # died, also before its first checkpoint: then it starts afresh.
                    log.warning(
                        "no complete checkpoint in %r yet; the job starts from the beginning",
                        str(storage.directory),
                    )
                return storage, loaded
            loaded = (
                storage.resolve(self.restore_from)
                if storage is not None
                else CheckpointStorage.load(self.restore_from)
            )
        return storage, loaded

    def _run_in_workers(self) -> None:
        from fraudstream.runtime.workers import ProcessCoordinator

        storage, loaded = self._storage_and_checkpoint()
        # Compile here too: a job that does not match its checkpoint fails before forking.
        self.plan = self.compile()
        if loaded is not None:
            self._restore(loaded)
        if storage is not None:
            storage.clear_staging()
        self.processes = ProcessCoordinator(self, self.workers)
        if not self.cancelled:
            self.processes.run(storage, loaded)

    def run(self) -> None:
        """Run to the end (in worker processes when configured with more than one)."""
        scope = LongLivedStateGC() if self.long_lived_state_gc else contextlib.nullcontext()
        try:
            with scope:  # worker processes inherit the setting when they are forked
                self._run()
        finally:
            self.release_directory()

    @property
    def holds_directory(self) -> bool:
        """Whether this job holds its checkpoint directory (from its start to its end)."""
        return self._claim is not None

    def release_directory(self) -> None:
        """Give up the claim on the checkpoint directory (when the job has ended)."""
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()

    def _run(self) -> None:
        if self.workers > 1:
            self._run_in_workers()
            return
        executor = self._prepare()
        if self.cancelled:
            executor.cancelled = True
        executor.run()

    def start_stepwise(self) -> None:
        """Open the job to be driven round by round (``execute_and_collect``)."""
        try:
            executor = self._prepare()
            executor.open()
        except BaseException:
            self.release_directory()
            raise
        self._stepping = True

    def step(self) -> bool:
        """One round; ``False`` when the job has ended (the job is then closed)."""
        assert self.executor is not None
        if not self._stepping:
            return False
        try:
            more = self.executor.step()
        except BaseException:
            self.stop_stepwise()
            raise
        if not more:
            try:
                if self.coordinator is not None and not self.cancelled:
                    self.coordinator.on_finished(self.executor.plan)
            finally:
                self.stop_stepwise()
        return more

    def stop_stepwise(self) -> None:
        """Close a stepwise job."""
        if getattr(self, "_stepping", False):
            self._stepping = False
            assert self.executor is not None
            try:
                self.executor.close()
            finally:
                self.release_directory()

    def cancel(self) -> None:
        """Stop after the current round."""
        self.cancelled = True
        if self.executor is not None:
            self.executor.cancelled = True

    def savepoint_and_stop(self) -> None:
        """Take a savepoint at the next round, then stop."""
        self.request_savepoint(stop=True)

    def request_savepoint(self, stop: bool = False) -> None:
        """Take a savepoint (``savepoint-<id>`` in the checkpoint directory) soon."""
        if not self.checkpoint_config.storage_dir:
            raise CheckpointError("savepoints need a checkpoint directory")
        target: Any = self.processes if self.processes is not None else self.coordinator
        if target is None:
            raise CheckpointError("the job has not started yet; ask again once it runs")
        target.savepoint_requested = True
        if stop:
            target.stop_after_savepoint = True

    def checkpoint_stats(self) -> dict[str, Any]:
        """Completed checkpoints, last duration (ms), size (bytes) and path."""
        source: Any = self.processes if self.processes is not None else self.coordinator
        if source is None:
            return {"completed": 0, "last_duration_ms": 0, "last_size": 0, "last_path": None}
        return {
            "completed": source.completed,
            "last_duration_ms": source.last_duration_ms,
            "last_size": source.last_size,
            "last_path": None if source.last_path is None else str(source.last_path),
        }

    def counters(self) -> dict[str, int]:
        """Records read per source and written per sink."""
        out: dict[str, int] = {}
        if self.processes is not None:
            return dict(self.processes.counters)
        if self.plan is None:
            return out
        for op in self.plan.operators:
            if isinstance(op, SourceOperator):
                out[f"{op.uid}.records_out"] = out.get(f"{op.uid}.records_out", 0) + op.records_out
                out[f"{op.uid}.dead_letters"] = (
                    out.get(f"{op.uid}.dead_letters", 0) + op.dead_letters
                )
            elif isinstance(op, ConnectorSinkOperator):
                out[f"{op.uid}.records_in"] = out.get(f"{op.uid}.records_in", 0) + op.records_in
        return out


class CheckpointCoordinator:
    """Takes checkpoints between executor rounds, when nothing is in flight.

    Steps of checkpoint ``n``:

    1. every connector sink seals what it wrote (``prepare_commit(n)``): phase one;
    2. every operator instance snapshots its state (source positions, keyed state,
       timers, broadcast state, sealed committables);
    3. the snapshot is written and atomically published;
    4. sinks commit what checkpoint ``n`` sealed; sources hear it is complete.
    """

    def __init__(
        self, storage: CheckpointStorage | None, interval_ms: int, now_ms: int, runner: JobRunner
    ) -> None:
        self.storage = storage
        self.interval_ms = interval_ms
        self.next_due = now_ms + interval_ms if interval_ms > 0 else None
        self.runner = runner
        self.next_id = runner.first_checkpoint_id(storage)
        self.savepoint_requested = False
        self.stop_after_savepoint = False
        self.last_completed_ms: int | None = None
        self.last_duration_ms = 0
        self.last_size = 0
        self.last_path: Path | None = None
        self.completed = 0

    def maybe_checkpoint(self, plan: JobPlan, now_ms: int) -> None:
        """Checkpoint when due (or a savepoint when asked)."""
        if self.savepoint_requested:
            self.savepoint_requested = False
            self.checkpoint(plan, now_ms, savepoint=True)
            if self.stop_after_savepoint:
                self.runner.cancel()
            return
        if self.next_due is not None and now_ms >= self.next_due:
            self.checkpoint(plan, now_ms)
            ended = now_ms + self.last_duration_ms  # measured on a monotonic clock
            self.next_due = int(
                next_checkpoint_due(
                    now_ms, ended, self.interval_ms, self.runner.checkpoint_config.min_pause_ms
                )
            )

    def checkpoint(self, plan: JobPlan, now_ms: int, savepoint: bool = False) -> Path | None:
        """Take checkpoint (or savepoint) number ``next_id``."""
        import time

        started = time.monotonic()
        checkpoint_id = self.next_id
        self.next_id += 1
        for operator in plan.operators:
            if isinstance(operator, ConnectorSinkOperator) and not operator.finished:
                operator.prepare_checkpoint(checkpoint_id)
        path = None
        if self.storage is not None:
            states: dict[str, list[Any]] = {}
            for operator in plan.operators:
                states.setdefault(operator.uid, []).append(operator.snapshot_state())
            payload = {
                "checkpoint_id": checkpoint_id,
                "parallelism": self.runner.parallelism,
                "max_parallelism": self.runner.max_parallelism,
                "operators": states,
            }
            path = self.storage.write(checkpoint_id, payload, savepoint, state_files_of(states))
            self.last_path = path
            self.last_size = sum(f.stat().st_size for f in path.iterdir())
        for operator in plan.operators:
            notify = getattr(operator, "notify_checkpoint_complete", None)
            if notify is not None:
                notify(checkpoint_id)
        self.completed += 1
        self.last_completed_ms = now_ms
        self.last_duration_ms = int((time.monotonic() - started) * 1000)
        return path

    def on_finished(self, plan: JobPlan) -> None:
        """Every operator finished: the final checkpoint, on which sinks commit the rest."""
        if self.storage is not None:
            self.checkpoint(plan, self.runner.clock.now_ms())


def _merged_reader_state(old: list[dict[str, Any]], position: Any) -> dict[str, Any]:
    """A new reader's state from all old readers' (a source that redistributes positions).

    Event time restarts from the least advanced old reader (never ahead of any split);
    per-split watermarks are kept for every split, each new reader keeping its own.
    """
    state: dict[str, Any] = {"position": position, "max_ts": min(s["max_ts"] for s in old)}
    splits = [s["split_watermarks"] for s in old if s.get("split_watermarks")]
    if splits:
        state["split_watermarks"] = {
            "max_ts": {split: ts for snap in splits for split, ts in snap["max_ts"].items()},
            "emitted": min(snap["emitted"] for snap in splits),
        }
    return state
