"""Common types of the PyFlink-compatible API, as in ``pyflink.common``."""

from __future__ import annotations

from fraudstream.common.configuration import Configuration
from fraudstream.common.serialization import Encoder, SimpleStringSchema
from fraudstream.common.time import Duration, Instant, Time
from fraudstream.common.typeinfo import TypeInformation, Types
from fraudstream.common.types import Row, RowKind
from fraudstream.common.watermark_strategy import TimestampAssigner, WatermarkStrategy

__all__ = [
    "Configuration",
    "Duration",
    "Encoder",
    "Instant",
    "Row",
    "RowKind",
    "SimpleStringSchema",
    "Time",
    "TimestampAssigner",
    "TypeInformation",
    "Types",
    "WatermarkStrategy",
]
