"""The operator interface of the runtime, and the channels that connect operators.

Records move between operators in *batches*: a list of values and, when the stream
has event time, a parallel list of timestamps (``None`` when it has none, the fast
path). Watermarks, idleness and end of input travel the same channels, between
batches, so an operator never sees a watermark in the middle of a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fraudstream.runtime.watermarks import MAX_WATERMARK, InputWatermarks

__all__ = ["Channel", "Operator", "Output", "TaskInfo"]

Timestamps = list[int] | None


@dataclass
class TaskInfo:
    """Where an operator instance runs and what it may read."""

    subtask_index: int = 0
    parallelism: int = 1
    max_parallelism: int = 128
    attempt: int = 0
    clock_ms: Callable[[], int] = field(default=lambda: 0)
    job_parameters: dict[str, str] = field(default_factory=dict)
    state_backend: str = "memory"
    state_dir: str | None = None
    #: where on-disk backends write state files for a checkpoint (None: in memory)
    snapshot_dir: str | None = None
    #: the directory of the checkpoint being restored (state files are relative to it)
    restore_dir: str | None = None
    #: a final checkpoint follows the end of input (sinks commit their last seal on it)
    final_checkpoint: bool = False


class Channel:
    """One connection from an upstream output into one input of a downstream operator."""

    __slots__ = ("index", "input_no", "push", "target")

    def __init__(self, target: Operator, input_no: int, index: int) -> None:
        self.target = target
        self.input_no = input_no
        self.index = index
        self.push: Callable[[list[Any], Timestamps], None] = (
            target.push1 if input_no == 0 else target.push2
        )

    def watermark(self, watermark: int) -> None:
        """Forward a watermark on this channel."""
        self.target.on_watermark(self.index, watermark)

    def idle(self, idle: bool) -> None:
        """Forward an idleness change on this channel."""
        self.target.on_idle(self.index, idle)

    def end(self) -> None:
        """Tell the target this channel has ended."""
        self.target.end_channel(self.index)


class Output:
    """Where an operator's results go: the main output's channels and side outputs' by tag."""

    __slots__ = ("main", "side")

    def __init__(self) -> None:
        self.main: list[Channel] = []
        self.side: dict[str, list[Channel]] = {}

    def emit(self, values: list[Any], timestamps: Timestamps) -> None:
        """Send a batch to every consumer of the main output."""
        if values:
            for channel in self.main:
                channel.push(values, timestamps)

    def emit_side(self, tag_id: str, values: list[Any], timestamps: Timestamps) -> None:
        """Send a batch to the consumers of a side output (dropped if nobody consumes it)."""
        channels = self.side.get(tag_id)
        if channels and values:
            for channel in channels:
                channel.push(values, timestamps)

    def _all(self) -> list[Channel]:
        return self.main + [c for cs in self.side.values() for c in cs]

    def watermark(self, watermark: int) -> None:
        """Forward a watermark to every consumer, side outputs included."""
        for channel in self._all():
            channel.watermark(watermark)

    def idle(self, idle: bool) -> None:
        """Forward idleness to every consumer."""
        for channel in self._all():
            channel.idle(idle)

    def end(self) -> None:
        """Tell every consumer this output has ended."""
        for channel in self._all():
            channel.end()

    def barrier(self, checkpoint_id: int) -> None:
        """Forward a checkpoint barrier to every consumer (worker processes only)."""
        for channel in self._all():
            channel.barrier(checkpoint_id)  # type: ignore[attr-defined]


class Operator:
    """One parallel instance of an operator.

    Lifecycle, as driven by the executor: ``setup`` → ``restore_state`` (when restoring)
    → ``open`` → ``push1``/``push2``, ``on_watermark``, ``fire_processing_timers`` ...
    → ``end_channel`` for each input channel → ``finish`` (once all ended) → ``close``.
    """

    #: How many inputs (1 or 2); input channels are numbered across inputs.
    num_inputs = 1

    def __init__(self, name: str, uid: str | None = None) -> None:
        self.name = name
        self.uid = uid or name
        self.out = Output()
        self.task = TaskInfo()
        self.channels = 0
        self.watermarks = InputWatermarks(0)
        self._ended_channels = 0
        self.finished = False

    # -- wiring --------------------------------------------------------------------------------
    def add_input_channel(self) -> int:
        """Allocate the next input channel index (done while compiling the plan)."""
        self.channels += 1
        return self.channels - 1

    def setup(self, task: TaskInfo) -> None:
        """Learn where this instance runs; called once before ``open``."""
        self.task = task
        self.watermarks = InputWatermarks(self.channels)

    @property
    def display_name(self) -> str:
        """The name used in errors and logs."""
        return self.name

    # -- lifecycle -----------------------------------------------------------------------------
    def open(self) -> None:
        """Prepare to process; open user functions."""

    def close(self) -> None:
        """Release resources; close user functions."""

    def finish(self) -> None:
        """All inputs ended: flush what is pending and end the outputs."""
        self.out.end()

    # -- data ----------------------------------------------------------------------------------
    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process a batch of the first input."""
        raise NotImplementedError

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process a batch of the second input."""
        raise NotImplementedError

    def on_watermark(self, channel: int, watermark: int) -> None:
        """A channel's watermark; advances this operator's when the minimum moves."""
        advanced = self.watermarks.update(channel, watermark)
        if advanced is not None:
            self.advance_watermark(advanced)

    def on_idle(self, channel: int, idle: bool) -> None:
        """A channel became idle or active."""
        was_idle = self.watermarks.idle
        advanced = self.watermarks.set_idle(channel, idle)
        if advanced is not None:
            self.advance_watermark(advanced)
        if self.watermarks.idle != was_idle:
            self.out.idle(self.watermarks.idle)

    def advance_watermark(self, watermark: int) -> None:
        """This operator's watermark moved to ``watermark``: fire timers, then forward it."""
        self.out.watermark(watermark)

    def end_channel(self, channel: int) -> None:
        """An input channel ended; once all have, the operator finishes."""
        self._ended_channels += 1
        if self._ended_channels >= self.channels and not self.finished:
            if self.watermarks.current < MAX_WATERMARK:
                # Every input ended: no record can come that a pending timer could wait for.
                self.watermarks.current = MAX_WATERMARK
                self.advance_watermark(MAX_WATERMARK)
            self.finished = True
            self.finish()

    # -- processing time -----------------------------------------------------------------------
    def next_processing_timer(self) -> int | None:
        """When this operator next needs ``fire_processing_timers``, or ``None``."""
        return None

    def fire_processing_timers(self, now: int) -> None:
        """Fire processing-time timers due at ``now``."""

    # -- checkpoints ---------------------------------------------------------------------------
    def snapshot_state(self) -> Any:
        """Picklable state of this instance for a checkpoint (``None`` when stateless)."""
        return None

    def restore_state(self, state: Any) -> None:
        """Load ``state`` from a checkpoint (before ``open``).

        ``state`` is the list of every old instance's snapshot that is not ``None`` (an
        operator whose state is split between instances picks its share); sources get
        their own reader's snapshot instead.
        """
