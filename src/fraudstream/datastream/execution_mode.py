"""``RuntimeExecutionMode``."""

from __future__ import annotations

from enum import Enum

__all__ = ["RuntimeExecutionMode"]


class RuntimeExecutionMode(Enum):
    """How a job executes; fraudstream runs every job as a stream."""

    STREAMING = 0
    BATCH = 1
    AUTOMATIC = 2
