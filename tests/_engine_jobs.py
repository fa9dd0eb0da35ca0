"""Connectors for engine tests that must work across worker processes.

A worker process has its own memory, so a sink that keeps records in a list would keep
them where the test cannot see them. :class:`FileCommitSink` publishes them to files
instead (exactly once with checkpoints: staged files renamed into place on commit,
idempotently). :class:`LockstepSource` emits ``every`` records and then waits for a
checkpoint to complete before the next ones, so that checkpoints fall between known
records whatever the machine's speed, and can fail the job at a chosen record.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fraudstream.connectors.base import (
    ReaderContext,
    Sink,
    SinkWriter,
    Source,
    SourceReader,
    WriterContext,
)


class FileCommitSink(Sink[Any]):
    """Publishes records as pickle files in ``directory``; :meth:`results` reads them all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
        return _FileCommitWriter(self.directory, subtask_index)

    def results(self) -> list[Any]:
        out: list[Any] = []
        for path in sorted(self.directory.glob("part-*")):
            out.extend(pickle.loads(path.read_bytes()))
        return out


class _FileCommitWriter(SinkWriter[Any]):
    def __init__(self, directory: Path, subtask: int) -> None:
        self.directory = directory
        self.subtask = subtask
        self.staged: list[Any] = []
        self.exactly_once = False
        self.run = uuid.uuid4().hex
        self.writes = 0

    def open(self, context: WriterContext) -> None:
        self.exactly_once = context.exactly_once

    def write(self, values: Sequence[Any]) -> None:
        self.staged.extend(values)
        if not self.exactly_once:
            self.writes += 1
            self._publish(self._stage(f"{self.run}-w{self.writes}"))

    def _stage(self, token: str) -> str | None:
        staged, self.staged = self.staged, []
        if not staged:
            return None
        name = f"{self.subtask}-{token}"
        (self.directory / f"staged-{name}").write_bytes(pickle.dumps(staged))
        return name

    def _publish(self, name: str | None) -> None:
        if name is None:
            return
        staged = self.directory / f"staged-{name}"
        if staged.exists():  # committing again after a restore is a no-op
            os.replace(staged, self.directory / f"part-{name}")

    def prepare_commit(self, checkpoint_id: int) -> Any:
        return self._stage(f"{self.run}-{checkpoint_id}")

    def commit(self, committables: Sequence[Any]) -> None:
        for name in committables:
            self._publish(name)


class LockstepSource(Source[Any]):
    """Reader ``i`` of ``p`` emits the records whose first field is ``i`` modulo ``p`` (so
    each key's records keep their order), ``every`` at a time between checkpoints.

    With ``abort_at``, reader 0 fails the job when it reaches that index of its records.
    """

    def __init__(
        self,
        records: list[Any],
        every: int,
        abort_at: int | None = None,
        readers: int | None = None,
    ) -> None:
        self.records = records
        self.every = every
        self.abort_at = abort_at
        self.max_parallelism = readers

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        mine = [r for r in self.records if r[0] % parallelism == subtask_index]
        return _LockstepReader(self, mine, subtask_index)


class _LockstepReader(SourceReader[Any]):
    def __init__(self, source: LockstepSource, records: list[Any], subtask: int) -> None:
        self.source = source
        self.records = records
        self.subtask = subtask
        self.position = 0
        self.allowance = source.every

    def open(self, context: ReaderContext) -> None:
        pass

    def poll(self, max_records: int) -> Sequence[Any] | None:
        if self.position >= len(self.records):
            return None
        abort_at = self.source.abort_at
        if abort_at is not None and self.subtask == 0 and self.position >= abort_at:
            raise RuntimeError(f"aborted at record {self.position}")
        count = min(max_records, self.allowance, len(self.records) - self.position)
        if abort_at is not None and self.subtask == 0 and self.position < abort_at:
            count = min(count, abort_at - self.position)
        batch = self.records[self.position : self.position + count]
        self.position += count
        self.allowance -= count
        return batch

    def snapshot_position(self) -> Any:
        return self.position

    def restore_position(self, position: Any) -> None:
        self.position = int(position)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self.allowance = self.source.every
