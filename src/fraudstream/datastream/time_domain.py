"""``TimeDomain``: which clock a timer belongs to."""

from __future__ import annotations

from enum import Enum

__all__ = ["TimeDomain"]


class TimeDomain(Enum):
    """The time domain of a firing timer, as reported by ``ctx.time_domain()`` in ``on_timer``."""

    EVENT_TIME = 0
    PROCESSING_TIME = 1
