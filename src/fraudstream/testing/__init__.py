"""Helpers for testing jobs: a scripted source, a capturing sink and a manual clock.

Build a job on a :class:`ScriptedSource` whose script interleaves records with
watermarks, processing-time advances, pauses and an abort; run it; read what reached a
:class:`CapturingSink`. With checkpointing enabled the sink shows only what committed
checkpoints cover, so a test can abort a job, resume it from its last checkpoint, and
compare the combined output with an uninterrupted run.
"""

from __future__ import annotations

from fraudstream.runtime.clock import ManualClock
from fraudstream.testing.sink import CapturingSink
from fraudstream.testing.source import (
    Abort,
    AbortedByScript,
    AdvanceProcessingTime,
    Pause,
    ScriptedSource,
    Timestamped,
    Watermark,
)

__all__ = [
    "Abort",
    "AbortedByScript",
    "AdvanceProcessingTime",
    "CapturingSink",
    "ManualClock",
    "Pause",
    "ScriptedSource",
    "Timestamped",
    "Watermark",
]
