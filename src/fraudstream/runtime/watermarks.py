"""Watermark bookkeeping of an operator's input channels.

An operator's watermark is the minimum over its input channels' watermarks, skipping
channels that are idle or finished. When every channel is idle, the operator takes the
largest watermark of them all and is idle itself, as Flink's status valve does.
"""

from __future__ import annotations

from fraudstream.common.watermark_strategy import MAX_WATERMARK, MIN_WATERMARK

__all__ = ["MAX_WATERMARK", "MIN_WATERMARK", "InputWatermarks"]


class InputWatermarks:
    """Per-channel watermarks and idleness; reports when the combined watermark advances."""

    __slots__ = ("_idle", "_wms", "current", "idle")

    def __init__(self, channels: int) -> None:
        self._wms = [MIN_WATERMARK] * channels
        self._idle = [False] * channels
        self.current = MIN_WATERMARK
        self.idle = False

    def update(self, channel: int, watermark: int) -> int | None:
        """Record ``watermark`` on ``channel``; the new combined watermark if it advanced."""
        self._wms[channel] = max(self._wms[channel], watermark)
        self._idle[channel] = False
        self.idle = False
        return self._recompute()

    def set_idle(self, channel: int, idle: bool) -> int | None:
        """Mark ``channel`` idle or active; the new combined watermark if it advanced."""
        self._idle[channel] = idle
        self.idle = all(self._idle)
        return self._recompute()

    def _recompute(self) -> int | None:
        active = [wm for wm, idle in zip(self._wms, self._idle) if not idle]
        combined = min(active) if active else max(self._wms)
        if combined > self.current:
            self.current = combined
            return combined
        return None
