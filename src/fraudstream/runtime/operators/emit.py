"""Collecting what user functions yield into output batches."""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any

from fraudstream.datastream.output_tag import OutputTag
from fraudstream.runtime.operators.base import Output, Timestamps

__all__ = ["BatchCollector", "is_side_output"]


def is_side_output(item: Any) -> bool:
    """Whether a yielded item is PyFlink's ``(output_tag, value)`` side-output form."""
    return item.__class__ is tuple and len(item) == 2 and item[0].__class__ is OutputTag


class BatchCollector:
    """Accumulates main and side outputs of several calls, then emits them as batches."""

    __slots__ = ("consumed", "side_outputs", "timestamps", "values")

    def __init__(self, consumed: Container[str] | None = None) -> None:
        self.values: list[Any] = []
        self.timestamps: list[int | None] = []
        self.side_outputs: dict[str, tuple[list[Any], list[int | None]]] = {}
        #: the side outputs someone consumes (None: unknown, assume all)
        self.consumed = consumed

    def consumes(self, tag_id: str) -> bool:
        """Whether the side output ``tag_id`` has a consumer (else its values are dropped)."""
        return self.consumed is None or tag_id in self.consumed

    def add(self, result: Iterable[Any] | None, timestamp: int | None) -> None:
        """Collect everything ``result`` yields, stamped with ``timestamp``."""
        if result is None:
            return
        for item in result:
            if item.__class__ is tuple and len(item) == 2 and item[0].__class__ is OutputTag:
                values, stamps = self.side_outputs.setdefault(item[0].tag_id, ([], []))
                values.append(item[1])
                stamps.append(timestamp)
            else:
                self.values.append(item)
                self.timestamps.append(timestamp)

    def side(self, tag_id: str) -> tuple[list[Any], list[int | None]]:
        """The value and timestamp lists of a side output (batch hooks append to them)."""
        lists = self.side_outputs.get(tag_id)
        if lists is None:
            lists = self.side_outputs[tag_id] = ([], [])
        return lists

    def add_side(self, tag_id: str, value: Any, timestamp: int | None) -> None:
        """Collect one side-output value."""
        values, stamps = self.side_outputs.setdefault(tag_id, ([], []))
        values.append(value)
        stamps.append(timestamp)

    def flush(self, out: Output) -> None:
        """Emit what was collected and start over."""
        if self.values:
            values, stamps = self.values, self.timestamps
            self.values, self.timestamps = [], []
            out.emit(values, _compact(stamps))
        if self.side_outputs:
            side, self.side_outputs = self.side_outputs, {}
            for tag_id, (values, stamps) in side.items():
                if values:
                    out.emit_side(tag_id, values, _compact(stamps))


def _compact(stamps: list[int | None]) -> Timestamps:
    """``None`` for a batch without any timestamp (the fast path downstream)."""
    for stamp in stamps:
        if stamp is not None:
            return stamps  # type: ignore[return-value]
    return None
