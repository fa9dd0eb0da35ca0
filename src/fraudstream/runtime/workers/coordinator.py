"""The job's process when its parallel instances run in worker processes.

It forks the workers (so job functions need not be picklable), then:

1. every checkpoint interval (or on a savepoint request) sends ``TRIGGER n`` to every
   worker, once the previous checkpoint is complete (one at a time);
2. collects every worker's acknowledgement with its operators' snapshots;
3. writes the checkpoint and publishes it atomically (as the in-process coordinator
   does): a checkpoint some worker did not acknowledge is never written;
4. sends ``COMPLETE n``: sinks commit what checkpoint ``n`` sealed (phase two).

A worker that fails reports its error, which stops the job with that error; a worker
that dies without a word (killed) stops the job naming it. Workers die with the job's
process (``PR_SET_PDEATHSIG``), so ``kill -9`` of the job leaves nothing running.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudstream.exceptions import ConfigurationError, JobFailedError
from fraudstream.runtime.checkpoints import (
    CheckpointStorage,
    LoadedCheckpoint,
    next_checkpoint_due,
    state_files_of,
)
from fraudstream.runtime.clock import SystemClock
from fraudstream.runtime.gcscope import frozen_heap
from fraudstream.runtime.workers.pipes import COORDINATOR, FrameWriter, Mesh
from fraudstream.runtime.workers.pipes import wait as wait_for_pipes
from fraudstream.runtime.workers.transport import CANCEL, COMPLETE, EXIT, TRIGGER, encode_parts
from fraudstream.runtime.workers.worker import driver_main, runs_in_driver, worker_main

if TYPE_CHECKING:
    from fraudstream.runtime.job import JobRunner

__all__ = ["ProcessCoordinator"]

log = logging.getLogger("fraudstream.workers")


class ProcessCoordinator:
    """Runs a job's parallel instances in ``workers`` forked processes."""

    def __init__(self, runner: JobRunner, workers: int) -> None:
        if not isinstance(runner.clock, SystemClock):
            raise ConfigurationError(
                "worker processes run on the system clock; a job with an injected "
                "processing-time clock runs with set_worker_processes(1)"
            )
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConfigurationError(
                "worker processes need the 'fork' start method (Linux, macOS); "
                "use set_worker_processes(1) on this platform"
            )
        if runner.state_backend == "rocksdb":
            from fraudstream.state.rocksdb import opened_in_this_process

            if opened_in_this_process():
                raise ConfigurationError(
                    "RocksDB was already used in this process, and its background threads "
                    "do not survive fork(): start jobs with the RocksDB state backend and "
                    "worker processes from a process that has not opened RocksDB (as the "
                    "fraudstream command does), or use set_worker_processes(1)"
                )
        self.runner = runner
        self.workers = workers
        self.counters: dict[str, int] = {}
        self.savepoint_requested = False
        self.stop_after_savepoint = False
        self.completed = 0
        self.last_duration_ms = 0
        self.last_size = 0
        self.last_path: Path | None = None
        self.participants = workers
        self.driver_thread: threading.Thread | None = None

    def run(self, storage: CheckpointStorage | None, loaded: LoadedCheckpoint | None) -> None:
        """Fork the workers, coordinate checkpoints, return when every worker is done.

        Instances of in-process connectors (:func:`runs_in_driver`) run in a thread of
        this process, the driver, which takes part as one more worker.
        """
        context = multiprocessing.get_context("fork")
        plan = self.runner.plan
        driver = plan is not None and any(runs_in_driver(op) for op in plan.operators)
        self.participants = self.workers + (1 if driver else 0)
        results = context.Queue()
        try:
            mesh = Mesh(self.participants)  # leaves nothing open if it fails
        except BaseException:
            results.close()
            raise
        processes: list[Any] = []
        thread = None
        try:
            for index in range(self.workers):
                processes.append(
                    context.Process(
                        target=worker_main,
                        args=(self.runner, index),
                        kwargs={
                            "workers": self.workers,
                            "mesh": mesh,
                            "results": results,
                            "loaded": loaded,
                            "parent_pid": os.getpid(),
                        },
                        name=f"fraudstream-worker-{index}",
                        daemon=True,
                    )
                )
            # Objects the workers inherit stay out of their garbage collector: its passes
            # would write to every inherited object and copy every page of the job's heap.
            # (Under LongLivedStateGC they already are, and stay so.)
            with frozen_heap():
                for process in processes:
                    process.start()
            mesh.keep({COORDINATOR, self.workers} if driver else {COORDINATOR})
            writers = [w for w in mesh.writers(COORDINATOR) if w is not None]
            if driver:  # started after forking: a child must not inherit a running thread
                thread = threading.Thread(
                    target=driver_main,
                    args=(self.runner, self.workers),
                    kwargs={
                        "workers": self.workers,
                        "mesh": mesh,
                        "results": results,
                        "loaded": loaded,
                    },
                    name="fraudstream-driver",
                    daemon=True,
                )
                thread.start()
        except BaseException:
            # Forking or starting the driver failed part way (no memory, no processes
            # left): stop the workers already started, and leave no pipe open.
            self._stop(processes, results, mesh, deadline=time.monotonic())
            raise
        self.driver_thread = thread
        failed = True
        try:
            self._coordinate(storage, writers, results, processes)
            failed = False
        finally:
            if not failed:
                for writer in writers:
                    self._send(writer, [(EXIT,)])
            elif thread is not None:
                self._send(writers[self.workers], [(CANCEL,)])
            self._deliver(writers, time.monotonic() + (0 if failed else 10))
            if thread is not None:
                thread.join(10)
                if thread.is_alive():  # stuck in a callback: its fds must not be reused
                    mesh.open -= set(mesh.ends_of(self.workers))
            self._stop(processes, results, mesh, time.monotonic() + (0 if failed else 10))

    @staticmethod
    def _stop(processes: list[Any], results: Any, mesh: Mesh, deadline: float) -> None:
        """Wait for the started workers until ``deadline``, and kill those still running.

        Then close the results queue and this process's pipe ends.
        """
        for process in processes:
            if process.pid is None:  # never started
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():  # a failed job's workers are stopped at once
                process.kill()
                process.join()
        results.cancel_join_thread()
        results.close()
        mesh.close()

    @staticmethod
    def _send(writer: FrameWriter, messages: list[Any]) -> None:
        """Send ``messages`` to one participant (what its pipe cannot take waits)."""
        writer.put(*encode_parts(messages))

    @staticmethod
    def _deliver(writers: list[FrameWriter], deadline: float) -> None:
        """Write what waits for the participants' pipes, until ``deadline`` at the latest."""
        while not all(writer.pump() for writer in writers):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait_for_pipes([], writers, min(left, 0.05))

    def _coordinate(
        self,
        storage: CheckpointStorage | None,
        writers: list[FrameWriter],
        results: Any,
        processes: list[Any],
    ) -> None:
        runner = self.runner
        interval = runner.checkpoint_interval_ms / 1000 if runner.checkpoint_interval_ms else None
        next_due = time.monotonic() + interval if interval else None
        min_pause = runner.checkpoint_config.min_pause_ms / 1000
        next_id = runner.first_checkpoint_id(storage)
        pending: dict[str, Any] | None = None
        done: set[int] = set()
        while len(done) < self.participants:
            if runner.cancelled:
                for writer in writers:
                    self._send(writer, [(CANCEL,)])
                return
            now = time.monotonic()
            wanted = self.savepoint_requested or (next_due is not None and now >= next_due)
            if pending is None and wanted:
                savepoint = self.savepoint_requested
                self.savepoint_requested = False
                pending = {"id": next_id, "acks": {}, "savepoint": savepoint, "started": now}
                next_id += 1
                for writer in writers:
                    self._send(writer, [(TRIGGER, pending["id"])])
                if interval:
                    next_due = now + interval
            wait = 0.05 if next_due is None else max(0.001, min(0.05, next_due - now))
            for writer in writers:
                writer.pump()  # what a busy worker's pipe could not take before
            try:
                message = results.get(True, wait)
            except queue.Empty:
                self._check_alive(processes, done, results)
                continue
            kind = message[0]
            if kind == "failed":
                self._raise_failure(message)
            elif kind == "done":
                done.add(message[1])
                for name, value in message[2].items():
                    self.counters[name] = self.counters.get(name, 0) + value
            elif kind == "ack" and pending is not None and message[2] == pending["id"]:
                pending["acks"][message[1]] = message[3]
                if len(pending["acks"]) == self.participants:
                    self._publish(storage, pending, writers)
                    if interval:
                        next_due = next_checkpoint_due(
                            pending["started"], time.monotonic(), interval, min_pause
                        )
                    # A periodic checkpoint under way when the stop was asked for is not
                    # the savepoint: that one is triggered next.
                    if self.stop_after_savepoint and pending["savepoint"]:
                        runner.cancel()
                    pending = None
        if storage is not None:
            self._final_checkpoint(storage, next_id, pending, writers, results)

    def _final_checkpoint(
        self,
        storage: CheckpointStorage,
        next_id: int,
        pending: dict[str, Any] | None,
        writers: list[FrameWriter],
        results: Any,
    ) -> None:
        """Every worker is done: one more checkpoint, on which sinks commit the rest."""
        if pending is None:
            pending = {"id": next_id, "acks": {}, "savepoint": False, "started": time.monotonic()}
            for writer in writers:
                self._send(writer, [(TRIGGER, pending["id"])])
        while len(pending["acks"]) < self.participants:
            message = results.get(True, 60)
            if message[0] == "failed":
                self._raise_failure(message)
            if message[0] == "ack" and message[2] == pending["id"]:
                pending["acks"][message[1]] = message[3]
        self._publish(storage, pending, writers)

    def _publish(
        self, storage: CheckpointStorage | None, pending: dict[str, Any], writers: list[FrameWriter]
    ) -> None:
        """Steps 3 and 4: write the checkpoint every worker acknowledged, then commit."""
        checkpoint_id: int = pending["id"]
        if storage is not None:
            by_uid: dict[str, dict[int, Any]] = {}
            for states in pending["acks"].values():
                for uid, subtask, state in states:
                    by_uid.setdefault(uid, {})[subtask] = state
            operators = {uid: [states[i] for i in sorted(states)] for uid, states in by_uid.items()}
            payload = {
                "checkpoint_id": checkpoint_id,
                "parallelism": self.runner.parallelism,
                "max_parallelism": self.runner.max_parallelism,
                "operators": operators,
            }
            path = storage.write(
                checkpoint_id, payload, pending["savepoint"], state_files_of(operators)
            )
            self.last_path = path
            self.last_size = sum(f.stat().st_size for f in path.iterdir())
        for writer in writers:
            self._send(writer, [(COMPLETE, checkpoint_id)])
        self.completed += 1
        self.last_duration_ms = int((time.monotonic() - pending["started"]) * 1000)

    def _check_alive(self, processes: list[Any], done: set[int], results: Any) -> None:
        thread = self.driver_thread
        if thread is not None and not thread.is_alive() and self.workers not in done:
            # The driver reports a failure before its thread ends; anything else is a bug.
            try:
                message = results.get(True, 1.0)
            except queue.Empty:
                message = None
            if message is not None and message[0] == "failed":
                self._raise_failure(message)
            raise JobFailedError("the driver's operators stopped before the job finished")
        for index, process in enumerate(processes):
            if process.exitcode is not None and index not in done:
                # A worker that failed reported why just before exiting: prefer its error.
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    try:
                        message = results.get(True, 0.05)
                    except queue.Empty:
                        continue
                    if message[0] == "failed":
                        self._raise_failure(message)
                raise JobFailedError(
                    f"worker process {index} (pid {process.pid}) died with exit code "
                    f"{process.exitcode} before the job finished"
                )

    @staticmethod
    def _raise_failure(message: tuple[Any, ...]) -> None:
        _, index, data, text, operator, record, trace = message
        log.debug("worker %d failed:\n%s", index, trace)
        error: BaseException | None = None
        if data is not None:
            try:
                error = pickle.loads(data)
            except Exception:
                error = None
        if isinstance(error, JobFailedError):
            error.operator = error.operator or operator
            if error.record is None and record:
                error.record = record
            raise error
        if isinstance(error, Exception) and not isinstance(error, (SystemExit,)):
            raise error
        raise JobFailedError(f"worker {index} failed: {text}", operator, record or None)
