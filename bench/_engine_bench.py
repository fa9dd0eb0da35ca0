"""A partitioned in-memory source and a counting sink for the engine benchmarks, and a
way to run a job's workers in turn in one process.

The source and sink work across worker processes: reader ``i`` of ``p`` reads the records
whose account is ``i`` modulo ``p`` (each account's records keep their order, so every
parallelism finds the same alerts), and the sink only counts (the engine reports
``records_in``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fraudstream.connectors.base import ReaderContext, Sink, SinkWriter, Source, SourceReader


class PartitionedSource(Source[Any]):
    """The records of a list, split over readers by ``record[0] % parallelism``."""

    def __init__(self, records: list[Any], parallelism: int = 1) -> None:
        # Split before the job starts: the benchmark measures the engine, not the split.
        self.parts = [[r for r in records if r[0] % parallelism == i] for i in range(parallelism)]

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        if parallelism != len(self.parts):
            raise ValueError(f"split for {len(self.parts)} readers, not {parallelism}")
        return _ListReader(self.parts[subtask_index])


class _ListReader(SourceReader[Any]):
    def __init__(self, records: list[Any]) -> None:
        self.records = records
        self.position = 0

    def open(self, context: ReaderContext) -> None:
        pass

    def poll(self, max_records: int) -> Sequence[Any] | None:
        if self.position >= len(self.records):
            return None
        batch = self.records[self.position : self.position + max_records]
        self.position += len(batch)
        return batch

    def snapshot_position(self) -> Any:
        return self.position

    def restore_position(self, position: Any) -> None:
        self.position = int(position)


class CountingSink(Sink[Any]):
    """Drops records; the job's ``<uid>.records_in`` counter says how many arrived."""

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[Any]:
        return _Dropping()


class _Dropping(SinkWriter[Any]):
    def write(self, values: Sequence[Any]) -> None:
        pass

    def prepare_commit(self, checkpoint_id: int) -> Any:
        return None

    def commit(self, committables: Sequence[Any]) -> None:
        pass


class CyclingSource(Source[Any]):
    """``total`` records taken round and round from a list (a replayable long stream)."""

    max_parallelism = 1

    def __init__(self, records: list[Any], total: int) -> None:
        self.records = records
        self.total = total

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        return _CyclingReader(self)


class _CyclingReader(SourceReader[Any]):
    def __init__(self, source: CyclingSource) -> None:
        self.source = source
        self.position = 0

    def open(self, context: ReaderContext) -> None:
        pass

    def poll(self, max_records: int) -> Sequence[Any] | None:
        records, total = self.source.records, self.source.total
        if self.position >= total:
            return None
        start = self.position % len(records)
        batch = records[start : start + min(max_records, total - self.position)]
        self.position += len(batch)
        return batch

    def snapshot_position(self) -> Any:
        return self.position

    def restore_position(self, position: Any) -> None:
        self.position = int(position)


class HoldingSource(Source[Any]):
    """Emits ``count`` distinct keys, then nothing until :meth:`release` (then it ends)."""

    max_parallelism = 1

    def __init__(self, count: int) -> None:
        import threading

        self.count = count
        self.released = threading.Event()
        self.emitted = threading.Event()

    def release(self) -> None:
        self.released.set()

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        return _HoldingReader(self)


class _HoldingReader(SourceReader[Any]):
    def __init__(self, source: HoldingSource) -> None:
        self.source = source
        self.position = 0

    def open(self, context: ReaderContext) -> None:
        pass

    def poll(self, max_records: int) -> Sequence[Any] | None:
        count = self.source.count
        if self.position >= count:
            self.source.emitted.set()
            return None if self.source.released.is_set() else []
        end = min(count, self.position + max_records)
        batch = [(key, key * 0.5) for key in range(self.position, end)]
        self.position = end
        return batch

    def snapshot_position(self) -> Any:
        return self.position

    def restore_position(self, position: Any) -> None:
        self.position = int(position)


def run_workers_in_turn(runners: list[Any]) -> None:
    """Run one worker per compiled job (``env._runner``), round by round, in this process.

    What the workers of ``len(runners)`` processes would do, pipes and all, on one core:
    a profiler or valgrind watching this process sees all of it.
    """
    from fraudstream.runtime.workers.pipes import Mesh
    from fraudstream.runtime.workers.worker import WorkerProcess

    class Results:
        done = 0

        def put(self, message: tuple[Any, ...]) -> None:
            self.done += message[0] == "done"

    count = len(runners)
    mesh = Mesh(count)
    results = Results()
    workers = [
        WorkerProcess(job, index, workers=count, mesh=mesh, results=results, loaded=None)
        for index, job in enumerate(runners)
    ]
    try:
        for worker in workers:
            worker.open()
        while results.done < count:
            for worker in workers:
                worker.step()
    finally:
        for worker in workers:
            worker.close()
        mesh.close()
