"""The job graph: transformations recorded lazily by the DataStream API.

Nothing runs while a program builds its streams; each API call appends a
:class:`Transformation`. ``execute()`` compiles them into operator instances
(:mod:`fraudstream.runtime.plan`). Virtual transformations (union, partitioning,
side-output selection) only shape the edges between physical ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fraudstream.common.typeinfo import TypeInformation, Types
from fraudstream.runtime.operators.base import Operator

__all__ = ["PHYSICAL", "Transformation"]

_ids = itertools.count(1)

#: Kinds that become operators; the others are virtual.
PHYSICAL = frozenset({"source", "one_input", "two_input", "sink"})


@dataclass(eq=False)
class Transformation:
    """One node of the job graph.

    Attributes:
        kind: ``source``, ``one_input``, ``two_input``, ``sink`` (physical) or
            ``union``, ``partition``, ``side_output`` (virtual).
        factory: creates a fresh operator instance from ``(name, uid)`` (physical only).
        inputs: upstream transformations; for ``two_input``, exactly two.
        partitioning: for ``partition`` nodes: ``hash``, ``broadcast``, ``rebalance``,
            ``shuffle``, ``rescale``, ``forward`` or ``global``.
        key_selector: for ``hash`` partitioning.
        side_tag: for ``side_output`` nodes, the tag id selected.
    """

    kind: str
    name: str
    inputs: list[Transformation] = field(default_factory=list)
    factory: Callable[[str, str | None], Operator] | None = None
    output_type: TypeInformation = field(default_factory=Types.PICKLED_BYTE_ARRAY)
    parallelism: int | None = None
    max_parallelism: int | None = None
    uid: str | None = None
    partitioning: str = "forward"
    key_selector: Callable[[Any], Any] | None = None
    side_tag: str | None = None
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def is_physical(self) -> bool:
        """Whether this node becomes an operator."""
        return self.kind in PHYSICAL
