"""Source operators (pulled by the executor) and the timestamps-and-watermarks operator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fraudstream.common.watermark_strategy import TimestampAssigner, WatermarkStrategy
from fraudstream.connectors.base import DeadLetter, ReaderContext, Source, SourceReader
from fraudstream.exceptions import JobFailedError
from fraudstream.runtime.operators.base import Operator, Timestamps
from fraudstream.runtime.operators.hooks import batch_hook
from fraudstream.runtime.watermarks import MAX_WATERMARK, MIN_WATERMARK

__all__ = [
    "DEAD_LETTER_TAG_ID",
    "SourceOperator",
    "SplitWatermarks",
    "TimestampsAndWatermarksOperator",
    "WatermarkGenerator",
]

#: Side output of every source carrying records that failed to parse or validate.
DEAD_LETTER_TAG_ID = "fraudstream-dead-letters"


class WatermarkGenerator:
    """Flink's bounded-out-of-orderness generator, plus idleness, driven per batch."""

    __slots__ = (
        "_assigner",
        "_batch_assigner",
        "_bound",
        "_idle_timeout",
        "idle",
        "last_activity",
        "max_ts",
    )

    def __init__(self, strategy: WatermarkStrategy) -> None:
        self._bound = strategy.out_of_orderness_ms
        self._assigner: TimestampAssigner | None = strategy.timestamp_assigner
        # The assigner's batch hook (datastream.batch), for records without timestamps.
        self._batch_assigner: Any = batch_hook(
            self._assigner, "extract_timestamp_batch", "extract_timestamp"
        )
        self._idle_timeout = strategy.idle_timeout_ms
        self.max_ts = MIN_WATERMARK if self._bound is None else MIN_WATERMARK + self._bound + 1
        self.idle = False
        self.last_activity = 0

    def stamp(self, values: list[Any], timestamps: Timestamps) -> Timestamps:
        """Event times of a batch: the assigner's, else the records' own."""
        assigner = self._assigner
        if assigner is None:
            return timestamps
        extract = assigner.extract_timestamp
        if timestamps is None:
            if self._batch_assigner is not None:
                return self._batch_assigner(values)  # type: ignore[no-any-return]
            return [extract(v, MIN_WATERMARK) for v in values]
        return [extract(v, MIN_WATERMARK if t is None else t) for v, t in zip(values, timestamps)]

    def observe(self, timestamps: Timestamps) -> int | None:
        """Take a batch's timestamps into account; the new watermark if it advanced."""
        if self._bound is None or not timestamps:
            return None
        present = [t for t in timestamps if t is not None]
        if not present:
            return None
        before = self.max_ts
        self.max_ts = max(before, *present)
        if self.max_ts == before:
            return None
        return self.max_ts - self._bound - 1

    def current(self) -> int:
        """The watermark so far."""
        if self._bound is None:
            return MIN_WATERMARK
        return self.max_ts - self._bound - 1

    def check_idle(self, now: int) -> bool:
        """Whether the stream just became idle (no records for the idle timeout)."""
        if self._idle_timeout is None or self.idle:
            return False
        if now - self.last_activity >= self._idle_timeout:
            self.idle = True
            return True
        return False

    def next_idle_check(self) -> int | None:
        """When idleness could next begin."""
        if self._idle_timeout is None or self.idle:
            return None
        return self.last_activity + self._idle_timeout

    def snapshot(self) -> int:
        """The largest timestamp seen."""
        return self.max_ts

    def restore(self, max_ts: int) -> None:
        """Continue from a snapshot."""
        self.max_ts = max_ts


class SplitWatermarks:
    """Per-split watermarks of one reader (Kafka partitions), combined as Flink does.

    Each split keeps its largest timestamp; the reader's watermark is the smallest split
    watermark over the splits that are not idle, and never goes back. A split counts from
    its assignment (:meth:`register`, holding the watermark back until its first record)
    or else from its first record, and becomes idle after the idle timeout without
    records (if the strategy has one), until its next record.
    """

    __slots__ = ("_bound", "_idle_timeout", "emitted", "idle", "last_activity", "max_ts")

    def __init__(self, strategy: WatermarkStrategy) -> None:
        self._bound = strategy.out_of_orderness_ms
        self._idle_timeout = strategy.idle_timeout_ms
        self.max_ts: dict[Any, int] = {}
        self.last_activity: dict[Any, int] = {}
        self.idle: set[Any] = set()
        self.emitted = MIN_WATERMARK

    def register(self, splits: Sequence[Any], now: int) -> None:
        """Splits assigned before their first record: each holds the watermark back."""
        for split in splits:
            if split not in self.max_ts:
                self.max_ts[split] = MIN_WATERMARK
                self.last_activity.setdefault(split, now)

    def keep_only(self, splits: Sequence[Any]) -> None:
        """Forget every split but ``splits`` (those of another reader, after a restore)."""
        own = set(splits)
        for split in [s for s in self.max_ts if s not in own]:
            del self.max_ts[split]
            self.last_activity.pop(split, None)
            self.idle.discard(split)

    def release(self, splits: Sequence[Any]) -> int | None:
        """Finished splits stop counting; the combined watermark if that advanced it."""
        released = False
        for split in splits:
            if split in self.max_ts:
                del self.max_ts[split]
                self.last_activity.pop(split, None)
                self.idle.discard(split)
                released = True
        return self._advance() if released and self._bound is not None else None

    def observe(self, splits: Sequence[Any], timestamps: Timestamps, now: int) -> int | None:
        """Take a batch into account; the new combined watermark if it advanced."""
        if self._bound is None or timestamps is None:
            return None
        max_ts, activity, idle = self.max_ts, self.last_activity, self.idle
        for split, ts in zip(splits, timestamps):
            activity[split] = now
            if ts is not None and ts > max_ts.get(split, MIN_WATERMARK):
                max_ts[split] = ts
        idle.difference_update(splits)
        return self._advance()

    def _advance(self) -> int | None:
        assert self._bound is not None
        active = [ts for split, ts in self.max_ts.items() if split not in self.idle]
        if not active:
            return None
        watermark = min(active) - self._bound - 1
        if watermark <= self.emitted:
            return None
        self.emitted = watermark
        return watermark

    def check_idle(self, now: int) -> int | None:
        """Mark quiet splits idle; the combined watermark if that advanced it."""
        if self._idle_timeout is None or self._bound is None:
            return None
        quiet = [
            split
            for split, last in self.last_activity.items()
            if split not in self.idle and now - last >= self._idle_timeout
        ]
        if not quiet:
            return None
        self.idle.update(quiet)
        return self._advance()

    def next_idle_check(self) -> int | None:
        """When a split could next become idle."""
        if self._idle_timeout is None:
            return None
        pending = [t for s, t in self.last_activity.items() if s not in self.idle]
        return min(pending) + self._idle_timeout if pending else None

    def snapshot(self) -> dict[str, Any]:
        """Largest timestamp per split and the watermark emitted."""
        return {"max_ts": dict(self.max_ts), "emitted": self.emitted}

    def restore(self, snapshot: dict[str, Any], now: int) -> None:
        """Continue from a snapshot (every split active again)."""
        self.max_ts = dict(snapshot["max_ts"])
        self.emitted = snapshot["emitted"]
        self.last_activity = dict.fromkeys(self.max_ts, now)
        self.idle = set()


class SourceOperator(Operator):
    """Reads a :class:`Source`; the executor calls :meth:`poll` round-robin."""

    num_inputs = 0

    def __init__(
        self, name: str, uid: str | None, source: Source[Any], strategy: WatermarkStrategy | None
    ) -> None:
        super().__init__(name, uid)
        self.source = source
        self.generator = WatermarkGenerator(strategy) if strategy is not None else None
        self.split_watermarks = SplitWatermarks(strategy) if strategy is not None else None
        self.reader: SourceReader[Any] | None = None
        self._splits_assigned = False  # the reader named its splits: ask for finished ones
        self._restored: Any = None
        self._dead: list[DeadLetter] = []
        self.records_out = 0
        self.dead_letters = 0
        self.ended = False

    def open(self) -> None:
        """Create and open this instance's reader, and restore its position."""
        task = self.task
        limit = self.source.max_parallelism
        if limit is not None and task.subtask_index >= limit:
            self.reader = None  # this source is read by fewer instances; this one ends at once
            return
        self.reader = self.source.create_reader(task.subtask_index, task.parallelism)
        context = ReaderContext(
            subtask_index=task.subtask_index,
            parallelism=task.parallelism,
            dead_letter=self._dead.append,
            clock_ms=task.clock_ms,
        )
        try:
            self.reader.open(context)
            if self._restored is not None:
                self.reader.restore_position(self._restored["position"])
                if self.generator is not None:
                    self.generator.restore(self._restored["max_ts"])
                splits = self._restored.get("split_watermarks")
                if splits is not None and self.split_watermarks is not None:
                    self.split_watermarks.restore(splits, task.clock_ms())
            assigned = self.reader.assigned_splits()
            if assigned is not None and self.split_watermarks is not None:
                # Restored at another parallelism, the state holds every old reader's
                # splits: this reader keeps its own.
                self.split_watermarks.keep_only(assigned)
            if assigned and self.split_watermarks is not None and self.generator is not None:
                self.split_watermarks.register(assigned, task.clock_ms())
                self._splits_assigned = True
        except Exception as exc:
            raise JobFailedError(f"source {self.name!r} failed to open: {exc}", self.name) from exc
        if self.generator is not None:
            self.generator.last_activity = task.clock_ms()

    def poll(self, max_records: int) -> int:
        """Read and emit one batch; the number of records, or -1 once the source ended."""
        if self.ended:
            return -1
        reader = self.reader
        if reader is None:
            self._end()
            return -1
        try:
            batch = reader.poll(max_records)
            native = reader.timestamps() if batch else None
            splits = reader.splits() if batch and self.generator is not None else None
            finished = reader.finished_splits() if self._splits_assigned else None
        except Exception as exc:
            raise JobFailedError(f"source {self.name!r} failed: {exc}", self.name) from exc
        if self._dead:
            self._flush_dead_letters()
        if batch is None:
            self._end()
            return -1
        if not batch:
            declared = reader.emitted_watermark()
            if declared is not None:
                self.out.watermark(declared)
                return 0
            generator = self.generator
            if generator is not None:
                self._check_idle(self.task.clock_ms())
            if finished:
                self._release(finished)
            return 0
        values = batch if isinstance(batch, list) else list(batch)
        timestamps: Timestamps = list(native) if native is not None else None
        generator = self.generator
        if generator is None:
            self.out.emit(values, timestamps)
        else:
            try:
                timestamps = generator.stamp(values, timestamps)
            except Exception as exc:
                raise JobFailedError(
                    f"timestamp assigner of source {self.name!r} failed: {exc}", self.name
                ) from exc
            now = self.task.clock_ms()
            generator.last_activity = now
            if generator.idle:
                generator.idle = False
                self.out.idle(False)
            self.out.emit(values, timestamps)
            watermark = generator.observe(timestamps)
            if splits is not None:
                assert self.split_watermarks is not None
                watermark = self.split_watermarks.observe(splits, timestamps, now)
            if watermark is not None:
                self.out.watermark(watermark)
            if finished:
                self._release(finished)
        declared = reader.emitted_watermark()
        if declared is not None:
            self.out.watermark(declared)
        self.records_out += len(values)
        return len(values)

    def _release(self, finished: Sequence[Any]) -> None:
        assert self.split_watermarks is not None
        watermark = self.split_watermarks.release(finished)
        if watermark is not None:
            self.out.watermark(watermark)

    def _flush_dead_letters(self) -> None:
        dead = list(self._dead)
        self._dead.clear()  # in place: the reader's context holds this very list's append
        self.dead_letters += len(dead)
        self.out.emit_side(DEAD_LETTER_TAG_ID, dead, None)

    def _end(self) -> None:
        self.ended = True
        self.out.watermark(MAX_WATERMARK)
        self.out.end()

    def next_processing_timer(self) -> int | None:
        """When idleness (of the source or of one of its splits) may begin."""
        if self.generator is None or self.split_watermarks is None:
            return None
        times = [self.generator.next_idle_check(), self.split_watermarks.next_idle_check()]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def fire_processing_timers(self, now: int) -> None:
        """Mark the source, or splits of it, idle after the idle timeout without records."""
        if self.generator is not None:
            self._check_idle(now)

    def _check_idle(self, now: int) -> None:
        assert self.generator is not None and self.split_watermarks is not None
        watermark = self.split_watermarks.check_idle(now)
        if watermark is not None:
            self.out.watermark(watermark)
        if self.generator.check_idle(now):
            self.out.idle(True)

    def snapshot_state(self) -> Any:
        """The reader's position and the largest timestamp seen."""
        if self.reader is None:
            return None
        state = {
            "position": self.reader.snapshot_position(),
            "max_ts": self.generator.snapshot() if self.generator else MIN_WATERMARK,
        }
        if self.split_watermarks is not None and self.split_watermarks.max_ts:
            state["split_watermarks"] = self.split_watermarks.snapshot()
        return state

    def restore_state(self, state: Any) -> None:
        """Remember where to continue (applied in ``open``)."""
        if isinstance(state, list):
            state = state[0] if state else None
        self._restored = state

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Tell the reader a checkpoint is durable."""
        if self.reader is not None:
            self.reader.notify_checkpoint_complete(checkpoint_id)

    def close(self) -> None:
        """Close the reader."""
        if self.reader is not None:
            self.reader.close()


class TimestampsAndWatermarksOperator(Operator):
    """``assign_timestamps_and_watermarks``: stamps records and generates watermarks.

    Upstream watermarks are dropped, except the final one at end of input, as in Flink.
    """

    def __init__(self, name: str, uid: str | None, strategy: WatermarkStrategy) -> None:
        super().__init__(name, uid)
        self.generator = WatermarkGenerator(strategy)

    def open(self) -> None:
        """Start the idleness clock."""
        self.generator.last_activity = self.task.clock_ms()

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Stamp the batch, emit it, then the watermark if it advanced."""
        generator = self.generator
        try:
            stamped = generator.stamp(values, timestamps)
        except Exception as exc:
            raise JobFailedError(
                f"timestamp assigner of {self.name!r} failed: {exc}", self.name
            ) from exc
        generator.last_activity = self.task.clock_ms()
        if generator.idle:
            generator.idle = False
            self.out.idle(False)
        self.out.emit(values, stamped)
        watermark = generator.observe(stamped)
        if watermark is not None:
            self.watermarks.current = watermark
            self.out.watermark(watermark)

    def on_watermark(self, channel: int, watermark: int) -> None:
        """Only the end-of-input watermark passes."""
        if watermark == MAX_WATERMARK:
            self.watermarks.current = MAX_WATERMARK
            self.out.watermark(MAX_WATERMARK)

    def on_idle(self, channel: int, idle: bool) -> None:
        """This operator decides idleness itself."""

    def end_channel(self, channel: int) -> None:
        """End like any operator, without a second final watermark."""
        self._ended_channels += 1
        if self._ended_channels >= self.channels and not self.finished:
            self.finished = True
            self.finish()

    def next_processing_timer(self) -> int | None:
        """When idleness may begin."""
        return self.generator.next_idle_check()

    def fire_processing_timers(self, now: int) -> None:
        """Mark the stream idle after the idle timeout without records."""
        if self.generator.check_idle(now):
            self.out.idle(True)

    def snapshot_state(self) -> Any:
        """The largest timestamp seen."""
        return {"max_ts": self.generator.snapshot()}

    def restore_state(self, state: Any) -> None:
        """Continue from the largest timestamp seen (the smallest over merged instances)."""
        states = state if isinstance(state, list) else [state]
        self.generator.restore(min(s["max_ts"] for s in states))
