"""Sink operators: connector sinks with two-phase commit, print, collect, SinkFunction."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from fraudstream.common.typeinfo import TypeInformation
from fraudstream.connectors.base import Sink, SinkWriter, WriterContext
from fraudstream.exceptions import JobFailedError
from fraudstream.runtime.operators.base import Operator, Timestamps

__all__ = [
    "CollectSinkOperator",
    "ConnectorSinkOperator",
    "PrintSinkOperator",
    "SinkFunctionOperator",
]


class ConnectorSinkOperator(Operator):
    """Writes to a :class:`Sink`; with checkpoints, commits only what a checkpoint covers.

    Two-phase commit, per checkpoint ``n``:

    1. at the barrier of ``n``, ``prepare_commit(n)`` seals what was written so far and
       the committable becomes part of checkpoint ``n``'s state;
    2. once checkpoint ``n`` is complete, ``commit`` makes it visible;
    3. after a crash, the committables in the restored checkpoint are committed again
       (commits are idempotent), and whatever was written after it is replayed. Each is
       committed again by one instance only: old instance ``j``'s go to new instance
       ``j % parallelism`` (two writers committing the same one would race), and every
       writer sees all of them (``WriterContext.restored_committables``).
    """

    def __init__(self, name: str, uid: str | None, sink: Sink[Any], exactly_once: bool) -> None:
        super().__init__(name, uid)
        self.sink = sink
        self.exactly_once = exactly_once
        self.writer: SinkWriter[Any] | None = None
        self._pending: dict[int, Any] = {}
        self._restored: list[Any] = []
        self._restored_all: list[Any] = []
        self._restored_subtasks: list[int] = []
        self._final: Any = None
        self.records_in = 0

    def open(self) -> None:
        """Create and open the writer; commit what the restored checkpoint sealed."""
        task = self.task
        self.writer = self.sink.create_writer(task.subtask_index, task.parallelism)
        self._guard(
            self.writer.open,
            WriterContext(
                task.subtask_index,
                task.parallelism,
                self.exactly_once,
                restored=task.restore_dir is not None,
                restored_committables=tuple(self._restored_all),
                restored_subtasks=tuple(self._restored_subtasks),
            ),
        )
        self._restored_all = []  # the writer has seen them; their data need not stay
        if self._restored:
            self._guard(self.writer.commit, self._restored)
            self._restored = []

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except JobFailedError:
            raise
        except Exception as exc:
            raise JobFailedError(f"sink {self.name!r} failed: {exc}", self.name) from exc

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Write (or stage) the batch."""
        assert self.writer is not None
        self._guard(self.writer.write, values)
        self.records_in += len(values)

    def prepare_checkpoint(self, checkpoint_id: int) -> None:
        """Phase 1: seal what was written before the barrier."""
        assert self.writer is not None
        committable = self._guard(self.writer.prepare_commit, checkpoint_id)
        if committable is not None:
            self._pending[checkpoint_id] = committable

    def snapshot_state(self) -> Any:
        """Sealed but not yet committed committables."""
        sealed = list(self._pending.values())
        if self._final is not None:
            sealed.append(self._final)
        return {"committables": sealed, "subtask": self.task.subtask_index}

    def restore_state(self, state: Any) -> None:
        """This instance's share of the committables to commit again when opening.

        A snapshot of an older version has no ``subtask``: its place in the list stands for
        it (a sink instance's snapshot is never ``None``, so none is missing before it).
        """
        task = self.task
        snapshots = state if isinstance(state, list) else [state]
        for position, snapshot in enumerate(snapshots):
            if not snapshot:
                continue
            self._restored_all.extend(snapshot["committables"])
            old = snapshot.get("subtask", position)
            self._restored_subtasks.append(old)
            if old % task.parallelism == task.subtask_index:
                self._restored.extend(snapshot["committables"])

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Phase 2: commit everything sealed up to this checkpoint (and the final seal)."""
        assert self.writer is not None
        ready = sorted(c for c in self._pending if c <= checkpoint_id)
        committables = [self._pending.pop(c) for c in ready]
        if self.finished and self._final is not None:
            committables.append(self._final)
            self._final = None
        if committables:
            self._guard(self.writer.commit, committables)
        if self.finished:
            self._guard(self.writer.flush)

    def finish(self) -> None:
        """End of input: seal the rest; commit it now, or after the final checkpoint.

        With checkpoint storage, the job takes a final checkpoint once every operator has
        finished and the seal is committed when it completes: a job restarted from its
        latest checkpoint after it ended then finds its sources at their end and its
        output complete, instead of replaying the tail.
        """
        assert self.writer is not None
        final = self._guard(self.writer.prepare_commit, 2**62)
        if self.task.final_checkpoint and self.exactly_once:
            self._final = final
            super().finish()
            return
        committables = [self._pending.pop(c) for c in sorted(self._pending)]
        if final is not None:
            committables.append(final)
        if committables:
            self._guard(self.writer.commit, committables)
        self._guard(self.writer.flush)
        super().finish()

    def close(self) -> None:
        """Close the writer."""
        if self.writer is not None:
            self.writer.close()


class PrintSinkOperator(Operator):
    """``print()``: one line per record on stdout, formatted as Flink prints it.

    The prefix follows Flink: ``identifier:i> `` with an identifier and parallelism > 1,
    ``identifier> `` or ``i> `` with one of them, nothing otherwise (``i`` counts from 1).
    """

    def __init__(
        self, name: str, uid: str | None, type_info: TypeInformation, identifier: str | None
    ) -> None:
        super().__init__(name, uid)
        self.format = type_info.format
        self.identifier = identifier
        self.prefix = ""

    def open(self) -> None:
        """Compute the line prefix."""
        prefix = self.identifier or ""
        if self.task.parallelism > 1:
            prefix = f"{prefix}:" if prefix else ""
            prefix += str(self.task.subtask_index + 1)
        self.prefix = f"{prefix}> " if prefix else ""

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Print the batch."""
        fmt, prefix = self.format, self.prefix
        text = "".join(f"{prefix}{fmt(v)}\n" for v in values)
        stream = sys.stdout
        stream.write(text)
        stream.flush()


class CollectSinkOperator(Operator):
    """Hands records to ``execute_and_collect`` (or any callback)."""

    def __init__(self, name: str, uid: str | None, deliver: Callable[[list[Any]], None]) -> None:
        super().__init__(name, uid)
        self.deliver = deliver

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Deliver the batch."""
        self.deliver(values)


class SinkFunctionOperator(Operator):
    """``add_sink(SinkFunction)``: calls ``invoke(value, context)`` per record."""

    def __init__(self, name: str, uid: str | None, function: Any) -> None:
        super().__init__(name, uid)
        self.function = function
        self._invoke = getattr(function, "invoke", function)

    def open(self) -> None:
        """Open the function."""
        from fraudstream.runtime.operators.contexts import OperatorRuntimeContext

        if hasattr(self.function, "open"):
            self.function.open(OperatorRuntimeContext(self, None))

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Invoke the function per record."""
        invoke = self._invoke
        value = None
        try:
            for value in values:
                invoke(value, None)
        except Exception as exc:
            raise JobFailedError(
                f"sink {self.name!r} failed on record {value!r}: {exc}", self.name, value
            ) from exc

    def close(self) -> None:
        """Close the function."""
        if hasattr(self.function, "close"):
            self.function.close()
