"""Aligned checkpoint barriers, as in Flink's asynchronous barrier snapshotting.

Sources inject barrier ``n`` into their outputs when a worker is told to take
checkpoint ``n``; the barrier then travels with the records. An operator with several
input channels *aligns*:

1. when barrier ``n`` arrives on a channel, that channel is blocked: what comes after
   the barrier on it is buffered, not processed (it belongs after the snapshot);
2. the other channels keep flowing until their barrier ``n`` arrives too (a channel
   that has ended counts as arrived: nothing more can come on it);
3. once every channel has its barrier, the operator snapshots its state, forwards
   barrier ``n`` on all its outputs, unblocks its channels and processes what was
   buffered, in arrival order.

Every input channel of an operator instance in a worker is a :class:`GatedChannel`,
whether its sender runs in the same worker (a direct call) or in another (a message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fraudstream.runtime.operators.base import Operator, Timestamps

__all__ = ["Aligner", "GatedChannel"]

_PUSH, _WATERMARK, _IDLE, _END = range(4)


class GatedChannel:
    """One input channel of an operator instance, closed while the operator aligns."""

    __slots__ = ("aligner", "blocked", "index", "input_no", "push_to", "target")

    def __init__(self, target: Operator, input_no: int, index: int, aligner: Aligner) -> None:
        self.target = target
        self.input_no = input_no
        self.index = index
        self.aligner = aligner
        self.blocked = False
        self.push_to: Callable[[list[Any], Timestamps], None] = (
            target.push1 if input_no == 0 else target.push2
        )
        aligner.channels.append(self)

    def push(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process a batch, or buffer it while this channel waits for the others' barrier."""
        if self.blocked:
            self.aligner.buffered.append((self, _PUSH, values, timestamps))
        else:
            self.push_to(values, timestamps)

    def watermark(self, watermark: int) -> None:
        """Forward a watermark (buffered while blocked)."""
        if self.blocked:
            self.aligner.buffered.append((self, _WATERMARK, watermark, None))
        else:
            self.target.on_watermark(self.index, watermark)

    def idle(self, idle: bool) -> None:
        """Forward an idleness change (buffered while blocked)."""
        if self.blocked:
            self.aligner.buffered.append((self, _IDLE, idle, None))
        else:
            self.target.on_idle(self.index, idle)

    def end(self) -> None:
        """This channel ended (buffered while blocked)."""
        if self.blocked:
            self.aligner.buffered.append((self, _END, None, None))
        else:
            self.target.end_channel(self.index)
            self.aligner.on_end(self.index)

    def barrier(self, checkpoint_id: int) -> None:
        """Barrier ``checkpoint_id`` arrived on this channel."""
        self.aligner.on_barrier(self, checkpoint_id)


class Aligner:
    """Barrier alignment of one operator instance.

    Args:
        operator: the instance.
        on_aligned: called with ``(operator, checkpoint id)`` when every channel has
            delivered the barrier: it snapshots the operator (and sink phase one).
        on_finished: called with the operator when it finished (every input ended).
    """

    def __init__(
        self,
        operator: Operator,
        on_aligned: Callable[[Operator, int], None],
        on_finished: Callable[[Operator], None],
    ) -> None:
        self.operator = operator
        self.channels: list[GatedChannel] = []
        self.arrived: set[int] = set()
        self.ended: set[int] = set()
        self.buffered: list[tuple[GatedChannel, int, Any, Any]] = []
        self.pending: int | None = None
        self._on_aligned = on_aligned
        self._on_finished = on_finished

    @property
    def aligning(self) -> bool:
        """Whether a barrier arrived on some channels and is awaited on others."""
        return self.pending is not None

    def on_barrier(self, channel: GatedChannel, checkpoint_id: int) -> None:
        """Step 1: block the channel; step 3 when it was the last one."""
        self.pending = checkpoint_id
        channel.blocked = True
        self.arrived.add(channel.index)
        self._check()

    def on_end(self, index: int) -> None:
        """An unblocked channel ended: it will deliver no barrier."""
        self.ended.add(index)
        if self.pending is not None:
            self._check()
        if self.operator.finished:
            self._on_finished(self.operator)

    def _check(self) -> None:
        if len(self.arrived | self.ended) < self.operator.channels:
            return
        checkpoint_id = self.pending
        assert checkpoint_id is not None
        self.pending = None
        self._on_aligned(self.operator, checkpoint_id)
        self.operator.out.barrier(checkpoint_id)
        self.arrived = set()
        for channel in self.channels:
            channel.blocked = False
        buffered, self.buffered = self.buffered, []
        for channel, kind, first, second in buffered:
            if kind == _PUSH:
                channel.push(first, second)
            elif kind == _WATERMARK:
                channel.watermark(first)
            elif kind == _IDLE:
                channel.idle(first)
            else:
                channel.end()
