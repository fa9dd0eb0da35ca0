"""One worker process: its share of the operator instances, driven by a pull loop.

Instance ``i`` of every operator runs in worker ``i % workers``. The worker compiles
the whole job (so channel numbers agree in every worker), keeps its own instances and
rewires every channel: to an instance in this worker through a :class:`GatedChannel`,
to one in another worker through a :class:`RemoteChannel`.

Each round of the loop:

1. takes the messages other workers and the coordinator sent (batches, watermarks,
   barriers, end of input; checkpoint triggers and completions);
2. polls every live source of this worker once, unless an operator is aligning a
   barrier (the sources then wait: what they read would only be buffered);
3. fires processing-time timers that are due;
4. sends what is pending for other workers, one message list per worker, when enough
   records are pending or the round produced nothing (then at once).

Checkpoint ``n`` in a worker: on ``TRIGGER n`` every source snapshots its position
and injects barrier ``n``; every operator snapshots when aligned (finished operators
at once); when all have, the worker sends the coordinator its snapshots
(``ack``). On ``COMPLETE n``, sinks commit what checkpoint ``n`` sealed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import time
import traceback
from typing import TYPE_CHECKING, Any

from fraudstream.runtime.checkpoints import LoadedCheckpoint
from fraudstream.runtime.exchange import ExchangeOutput
from fraudstream.runtime.executor import fire_due_timers
from fraudstream.runtime.operators.base import Channel, Operator
from fraudstream.runtime.operators.sinks import ConnectorSinkOperator
from fraudstream.runtime.operators.sources import SourceOperator
from fraudstream.runtime.workers.alignment import Aligner, GatedChannel
from fraudstream.runtime.workers.pipes import wait as sleep_until_ready
from fraudstream.runtime.workers.transport import (
    BARRIER,
    CANCEL,
    COMPLETE,
    DATA,
    END,
    EXIT,
    IDLE,
    TRIGGER,
    WATERMARK,
    Inbox,
    Outbox,
    RemoteChannel,
)

if TYPE_CHECKING:
    from fraudstream.runtime.workers.pipes import Mesh

if TYPE_CHECKING:
    from fraudstream.runtime.job import JobRunner

__all__ = ["WorkerProcess", "driver_main", "placement", "runs_in_driver", "worker_main"]

_PR_SET_PDEATHSIG = 1


def runs_in_driver(operator: Operator) -> bool:
    """Whether ``operator`` reads or writes a connector that lives in the job's own process.

    Such connectors (``in_process``: a queue fed by the web service, a callback into it,
    a generator whose speed it sets) are reached by other threads of the job's process,
    so their instances run there, in the driver, and not in a forked worker.
    """
    if isinstance(operator, SourceOperator):
        return bool(getattr(operator.source, "in_process", False))
    if isinstance(operator, ConnectorSinkOperator):
        return bool(getattr(operator.sink, "in_process", False))
    return False


def placement(operator: Operator, workers: int) -> int:
    """The worker an operator instance runs in.

    Worker ``subtask % workers``, or ``workers`` (the driver, in the job's own process)
    for the instances of in-process connectors.
    """
    if runs_in_driver(operator):
        return workers
    return operator.task.subtask_index % workers


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this worker when the job's process dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class WorkerProcess:
    """The operators of one worker and the loop that drives them."""

    def __init__(
        self,
        runner: JobRunner,
        index: int,
        *,
        workers: int,
        mesh: Mesh,
        results: Any,
        loaded: LoadedCheckpoint | None,
    ) -> None:
        self.runner = runner
        self.index = index
        self.workers = workers
        self.results = results
        self.inbox = Inbox(mesh.readers(index))
        self.outbox = Outbox(mesh.writers(index), self.inbox, runner.batch_size)
        plan = runner.compile()
        if loaded is not None:
            runner.restore(loaded)
        self.home: dict[int, tuple[int, int]] = {}
        for node_id, ops in runner.instances_by_node.items():
            for op in ops:
                self.home[id(op)] = (node_id, op.task.subtask_index)
        self.local = [op for op in plan.operators if self._worker_of(op) == index]
        self.sources = [op for op in self.local if isinstance(op, SourceOperator)]
        self.aligners: dict[int, Aligner] = {}
        self.inbound: dict[tuple[int, int, int], GatedChannel] = {}
        self._rewire(plan.operators)
        self.snapshots: dict[int, Any] = {}
        self.checkpoint_id: int | None = None
        self.last_acknowledged = 0
        self.with_state = runner.checkpoint_config.storage_dir is not None
        self.done_reported = False
        self.stopping = False
        self.active: list[SourceOperator] = []
        self.opened: list[Operator] = []
        self.next_timer: int | None = None
        self.idle_seconds = 0.0  # waiting for messages or pipe room (a counter)

    # -- wiring --------------------------------------------------------------------------------
    def _worker_of(self, operator: Operator) -> int:
        return placement(operator, self.workers)

    def _aligner(self, operator: Operator) -> Aligner:
        aligner = self.aligners.get(id(operator))
        if aligner is None:
            aligner = Aligner(operator, self._snapshot, self._on_finished)
            self.aligners[id(operator)] = aligner
        return aligner

    def _replace(self, sender: Operator, channel: Any) -> Any:
        """What ``sender`` (in this worker) should hold instead of ``channel``."""
        if isinstance(channel, ExchangeOutput):
            channel.targets = [self._replace(sender, t) for t in channel.targets]
            return channel
        assert isinstance(channel, Channel)
        target = channel.target
        node_id, subtask = self.home[id(target)]
        key = (node_id, subtask, channel.index)
        if self._worker_of(target) == self.index:
            return GatedChannel(target, channel.input_no, channel.index, self._aligner(target))
        return RemoteChannel(self.outbox, self._worker_of(target), key)

    def _rewire(self, everything: list[Operator]) -> None:
        for operator in everything:
            channels = list(operator.out.main) + [
                c for cs in operator.out.side.values() for c in cs
            ]
            if self._worker_of(operator) == self.index:
                operator.out.main = [self._replace(operator, c) for c in operator.out.main]
                for tag, side in operator.out.side.items():
                    operator.out.side[tag] = [self._replace(operator, c) for c in side]
                continue
            # A sender in another worker: register where its messages arrive here.
            for channel in channels:
                targets = channel.targets if isinstance(channel, ExchangeOutput) else [channel]
                for target_channel in targets:
                    target = target_channel.target
                    if self._worker_of(target) != self.index:
                        continue
                    node_id, subtask = self.home[id(target)]
                    key = (node_id, subtask, target_channel.index)
                    self.inbound[key] = GatedChannel(
                        target, target_channel.input_no, target_channel.index, self._aligner(target)
                    )

    # -- checkpoints ---------------------------------------------------------------------------
    def _begin(self, checkpoint_id: int) -> bool:
        """Whether checkpoint ``checkpoint_id`` is (now) in progress in this worker.

        It starts with the coordinator's trigger or with the first barrier from another
        worker, whichever comes first: the two race.
        """
        if self.checkpoint_id != checkpoint_id and checkpoint_id > self.last_acknowledged:
            self.checkpoint_id = checkpoint_id
            self.snapshots = {}
        return self.checkpoint_id == checkpoint_id

    def _snapshot(self, operator: Operator, checkpoint_id: int) -> None:
        if not self._begin(checkpoint_id) or id(operator) in self.snapshots:
            return
        if isinstance(operator, ConnectorSinkOperator) and not operator.finished:
            operator.prepare_checkpoint(checkpoint_id)
        state = operator.snapshot_state() if self.with_state else None
        self.snapshots[id(operator)] = (operator.uid, operator.task.subtask_index, state)
        if len(self.snapshots) == len(self.local):
            self._acknowledge()

    def _on_finished(self, operator: Operator) -> None:
        if self.checkpoint_id is not None:
            self._snapshot(operator, self.checkpoint_id)

    def _trigger(self, checkpoint_id: int) -> None:
        if not self._begin(checkpoint_id):
            return  # barriers from other workers already completed it here
        for source in self.sources:
            self._snapshot(source, checkpoint_id)
            if not source.ended:
                source.out.barrier(checkpoint_id)
        for operator in self.local:
            if operator.finished and not isinstance(operator, SourceOperator):
                self._snapshot(operator, checkpoint_id)
        if self.checkpoint_id == checkpoint_id and len(self.snapshots) == len(self.local):
            self._acknowledge()  # nothing here waits for a barrier (or nothing runs here)

    def _acknowledge(self) -> None:
        checkpoint_id = self.checkpoint_id
        assert checkpoint_id is not None
        states = list(self.snapshots.values())
        self.last_acknowledged = checkpoint_id
        self.checkpoint_id = None
        self.snapshots = {}
        self.outbox.flush()  # barriers go out before the coordinator can trigger the next
        self.results.put(("ack", self.index, checkpoint_id, states))

    def _complete(self, checkpoint_id: int) -> None:
        for operator in self.local:
            notify = getattr(operator, "notify_checkpoint_complete", None)
            if notify is not None:
                notify(checkpoint_id)

    # -- the loop ------------------------------------------------------------------------------
    def _dispatch(self, messages: list[Any]) -> None:
        inbound = self.inbound
        for message in messages:
            kind = message[0]
            if kind == DATA:
                inbound[message[1]].push(message[2], message[3])
            elif kind == WATERMARK:
                inbound[message[1]].watermark(message[2])
            elif kind == IDLE:
                inbound[message[1]].idle(message[2])
            elif kind == END:
                inbound[message[1]].end()
            elif kind == BARRIER:
                inbound[message[1]].barrier(message[2])
            elif kind == TRIGGER:
                self._trigger(message[1])
            elif kind == COMPLETE:
                self._complete(message[1])
            elif kind in (CANCEL, EXIT):
                self.stopping = True

    def _aligning(self) -> bool:
        return any(a.pending is not None for a in self.aligners.values())

    def _finished(self) -> bool:
        return all(op.ended if isinstance(op, SourceOperator) else op.finished for op in self.local)

    def run(self) -> None:
        """Open this worker's operators and run until told to stop."""
        try:
            self.open()
            while not self.stopping:
                if not self.step():
                    self.idle()
        finally:
            self.close()

    def open(self) -> None:
        """Open this worker's operators, sinks first."""
        self.active = list(self.sources)
        for operator in reversed(self.local):
            operator.open()
            self.opened.append(operator)

    def step(self) -> bool:
        """One round of the loop (see the module's docstring); whether it did anything."""
        received = False
        for _ in range(64):
            messages = self.inbox.get(None)
            if messages is None:
                break
            received = True
            self._dispatch(messages)
            if self.stopping:
                return True
        produced = 0
        if self.active and not self._aligning():
            for source in list(self.active):
                count = source.poll(self.runner.batch_size)
                if count < 0:
                    self.active.remove(source)
                else:
                    produced += count
        self._fire_timers()
        if produced == 0 or self.outbox.due():
            # While sources produce, batches for other workers fill up to the outbox's
            # threshold (fewer, larger messages); they go out at once when this worker
            # idles.
            self.outbox.flush()
        else:
            self.outbox.send_full()
        self.outbox.pump()
        if not self.done_reported and self._finished():
            self.done_reported = True
            self.results.put(("done", self.index, self._counters()))
        return produced > 0 or received

    def _fire_timers(self) -> None:
        self.next_timer = fire_due_timers(self.local, self.runner.clock.now_ms())

    def idle(self) -> None:
        """Nothing to do: sleep until a message comes, a pipe has room or a timer is due."""
        if self.inbox.frames:  # read while a send waited for room: nothing to wait for
            return
        wait = 0.002 if self.active else 0.05
        if self.next_timer is not None:
            now = self.runner.clock.now_ms()
            wait = max(0.0005, min(wait, (self.next_timer - now) / 1000))
        started = time.perf_counter()
        sleep_until_ready(self.inbox.readers, self.outbox.waiting_writers(), wait)
        self.idle_seconds += time.perf_counter() - started

    def close(self) -> None:
        """Send what is pending (best effort) and close the opened operators."""
        # A worker stops on EXIT (every peer is done) or when the job failed, so nobody
        # waits for what a full pipe cannot take now.
        self.outbox.flush()
        self.outbox.pump()
        for operator in self.opened:
            with contextlib.suppress(Exception):
                operator.close()

    def _counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.local:
            if isinstance(op, SourceOperator):
                out[f"{op.uid}.records_out"] = out.get(f"{op.uid}.records_out", 0) + op.records_out
                out[f"{op.uid}.dead_letters"] = (
                    out.get(f"{op.uid}.dead_letters", 0) + op.dead_letters
                )
            elif isinstance(op, ConnectorSinkOperator):
                out[f"{op.uid}.records_in"] = out.get(f"{op.uid}.records_in", 0) + op.records_in
        out[f"worker{self.index}.batches_sent"] = self.outbox.batches_sent
        out[f"worker{self.index}.bytes_sent"] = self.outbox.bytes_sent
        out[f"worker{self.index}.idle_ms"] = round(self.idle_seconds * 1000)
        return out


def _portable(exc: BaseException) -> tuple[bytes | None, str, str, str]:
    """The failure as the coordinator can rebuild it (pickled when possible)."""
    operator = getattr(exc, "operator", "") or ""
    record = getattr(exc, "record", None)
    data: bytes | None
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
    except Exception:
        data = None
    shown = "" if record is None else repr(record)
    return data, f"{type(exc).__name__}: {exc}", str(operator), shown


def driver_main(
    runner: JobRunner,
    index: int,
    *,
    workers: int,
    mesh: Mesh,
    results: Any,
    loaded: LoadedCheckpoint | None,
) -> None:
    """Run the driver's operators (in-process connectors) in a thread of the job's process.

    The driver takes part in the job as one more worker (index ``workers``): its own
    inbound pipes, the same messages, barriers and acknowledgements.
    """
    try:
        WorkerProcess(
            runner, index, workers=workers, mesh=mesh, results=results, loaded=loaded
        ).run()
    except BaseException as exc:
        data, text, operator, record = _portable(exc)
        results.put(("failed", index, data, text, operator, record, traceback.format_exc()))


def worker_main(
    runner: JobRunner,
    index: int,
    *,
    workers: int,
    mesh: Mesh,
    results: Any,
    loaded: LoadedCheckpoint | None,
    parent_pid: int,
) -> None:
    """Entry point of a worker process (forked: nothing here is pickled)."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    mesh.keep({index})
    code = 0
    try:
        WorkerProcess(
            runner, index, workers=workers, mesh=mesh, results=results, loaded=loaded
        ).run()
    except BaseException as exc:
        data, text, operator, record = _portable(exc)
        results.put(("failed", index, data, text, operator, record, traceback.format_exc()))
        code = 1
    # Leave without the interpreter's teardown: native libraries' static destructors
    # (RocksDB's thread pools) may wait for threads that only existed in the parent.
    results.close()
    results.join_thread()
    os._exit(code)
