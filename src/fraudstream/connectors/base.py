"""The interfaces every source and sink implements.

A :class:`Source` describes where records come from and creates one
:class:`SourceReader` per parallel instance. Readers are *pulled* by the
runtime's single-threaded loop (``poll``), never pushed through threads, and
report a position the runtime stores in checkpoints, so that a restored job
replays exactly the records after the checkpoint.

A :class:`Sink` creates one :class:`SinkWriter` per parallel instance. Writers
follow a two-phase commit: ``write`` stages records, ``prepare_commit`` seals
what was written up to a checkpoint barrier into a *committable*, and
``commit`` makes it visible once the checkpoint is complete. ``commit`` must be
idempotent: after a crash the runtime commits the committables of the restored
checkpoint again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "DeadLetter",
    "ReaderContext",
    "Sink",
    "SinkWriter",
    "Source",
    "SourceReader",
    "WriterContext",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DeadLetter:
    """A record that failed to parse or validate, kept with why and where.

    Attributes:
        raw: the record's bytes exactly as read.
        reason: what is wrong, naming the field or value.
        source: the source's name.
        position: where it was read (file offset, ``partition:offset``, sequence number).
    """

    raw: bytes
    reason: str
    source: str
    position: str

    def to_json_dict(self) -> dict[str, Any]:
        """The dead letter as JSON-ready fields; raw bytes are decoded with replacement."""
        return {
            "source": self.source,
            "position": self.position,
            "reason": self.reason,
            "raw": self.raw.decode("utf-8", errors="replace"),
        }


@dataclass
class ReaderContext:
    """What the runtime tells a reader about its place in the job.

    Attributes:
        subtask_index: this parallel instance, from 0.
        parallelism: number of parallel instances of the source.
        dead_letter: call with a :class:`DeadLetter` for every record that is not valid;
            the runtime routes it to the dead-letter side output and counts it.
        clock_ms: the processing-time clock, milliseconds since the epoch.
    """

    subtask_index: int = 0
    parallelism: int = 1
    dead_letter: Callable[[DeadLetter], None] = field(default=lambda dl: None)
    clock_ms: Callable[[], int] = field(default=lambda: 0)


class SourceReader(ABC, Generic[T]):
    """One parallel instance of a source, pulled by the runtime."""

    def open(self, context: ReaderContext) -> None:
        """Called once before the first ``poll``."""

    @abstractmethod
    def poll(self, max_records: int) -> Sequence[T] | None:
        """Return up to ``max_records`` new records, ``[]`` if none are ready, ``None`` at the end.

        A reader that waits on I/O waits at most a few milliseconds here, so the
        runtime can fire timers and take checkpoints in between.
        """

    def emitted_watermark(self) -> int | None:
        """A watermark the reader itself declares after the last ``poll`` (scripted sources)."""
        return None

    def timestamps(self) -> Sequence[int] | None:
        """Native event times (ms) of the last ``poll``'s records, if the source has them."""
        return None

    def splits(self) -> Sequence[Any] | None:
        """The split (e.g. Kafka partition) of each of the last ``poll``'s records.

        A reader of several splits returns them so that watermarks are generated per
        split and combined (the minimum over splits that are not idle), as Flink does;
        ``None`` means the reader is one stream.
        """
        return None

    def assigned_splits(self) -> Sequence[Any] | None:
        """The splits this reader reads, when it knows them once open (Kafka partitions).

        With watermarks per split, each of them holds the watermark back from the start,
        until its first record or until it is idle, as Flink does with the splits
        assigned to a reader (a split's output is created on assignment, FLINK-26018):
        otherwise a split whose records come later than another's
        (the consumer fetched the other first) would find the watermark already past
        them. ``None``: splits count from their first record.
        """
        return None

    def finished_splits(self) -> Sequence[Any] | None:
        """Splits read to their end for good (a bounded read's stop offsets).

        Asked after each ``poll`` when :meth:`assigned_splits` named some: they no longer
        hold the watermark back (Flink releases a finished split's output).
        """
        return None

    @abstractmethod
    def snapshot_position(self) -> Any:
        """The position after the last polled record; picklable, small."""

    @abstractmethod
    def restore_position(self, position: Any) -> None:
        """Continue after ``position`` (called after ``open``, before the first ``poll``)."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """A checkpoint this reader took part in is durable (e.g. commit Kafka offsets)."""

    def close(self) -> None:
        """Release resources; called once, also after a failure."""


class Source(ABC, Generic[T]):
    """Describes a source and creates one reader per parallel instance."""

    #: True when the source ends by itself (a file, a collection, ``count=`` generator).
    bounded: bool = True

    #: Upper bound on parallel readers (None: any); e.g. a collection is read by one reader.
    max_parallelism: int | None = None

    #: Other threads of the job's process feed or control this source (a queue, a live
    #: generator): with worker processes its readers run in that process, not a worker.
    in_process: bool = False

    def redistribute(self, positions: Sequence[Any], readers: int) -> list[Any] | None:
        """Positions for ``readers`` readers, from a checkpoint taken with another number.

        ``positions`` are what the old readers' ``snapshot_position`` returned, in reader
        order (readers that had none left out). ``None``, the default, says that positions
        belong to their readers: such a source is restored with the number of readers it
        was checkpointed with. A source whose splits move between readers with the
        parallelism (Kafka partitions) hands each new reader the positions of its splits.
        """
        return None

    @abstractmethod
    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[T]:
        """A reader for one parallel instance."""


@dataclass
class WriterContext:
    """What the runtime tells a writer about its place in the job."""

    subtask_index: int = 0
    parallelism: int = 1
    #: False when checkpointing is off: writers make records visible as they go.
    exactly_once: bool = False
    #: True when the job was restored from a checkpoint or savepoint: the writer continues
    #: the output of the run that took it (it must not start a fresh output).
    restored: bool = False
    #: Every committable the restored checkpoint holds, sealed by any old instance: what
    #: the run that took it was writing. This writer commits only those given to
    #: ``commit``; the others are another instance's to commit.
    restored_committables: tuple[Any, ...] = ()
    #: The instance indices of the run the restored checkpoint was taken from. After a
    #: restore at a lower parallelism, old instance ``j >= parallelism`` has no writer of
    #: its own: writer ``j % parallelism`` stands in for it (a transactional sink fences
    #: the old instance's producer, which may still be alive, before committing its share).
    restored_subtasks: tuple[int, ...] = ()


class SinkWriter(ABC, Generic[T]):
    """One parallel instance of a sink, with two-phase commit."""

    def open(self, context: WriterContext) -> None:
        """Called once before the first write."""

    @abstractmethod
    def write(self, values: Sequence[T]) -> None:
        """Stage a batch of records (visible at once when not exactly-once)."""

    def prepare_commit(self, checkpoint_id: int) -> Any:
        """Seal everything written so far; return a picklable committable (or None)."""
        self.flush()
        return None

    def commit(self, committables: Sequence[Any]) -> None:
        """Make sealed committables visible; must be idempotent.

        After a restore, writer ``i`` first commits again what the old writers ``j`` with
        ``j % parallelism == i`` had sealed (the previous run may have committed them
        already); no two writers get the same committable. All of them are in
        ``WriterContext.restored_committables``.
        """

    def flush(self) -> None:
        """Push buffered records out (non-transactional sinks)."""

    def close(self) -> None:
        """Release resources; called once, also after a failure."""


class Sink(ABC, Generic[T]):
    """Describes a sink and creates one writer per parallel instance."""

    #: The writers hand records to the job's own process (a callback): with worker
    #: processes they run in that process, not in a worker.
    in_process: bool = False

    @abstractmethod
    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[T]:
        """A writer for one parallel instance."""
