"""The compiled form of a job: operator instances and the edges between them.

Virtual transformations become edges: a union adds channels, a partitioning decides
how records cross between parallel instances, a side-output selection attaches the
edge to a side output of the upstream operator. Connected operators are chained: a
batch crosses a chain through direct calls, without queues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fraudstream.runtime.graph import Transformation
from fraudstream.runtime.operators.base import Operator
from fraudstream.runtime.operators.sources import SourceOperator

__all__ = ["Edge", "JobPlan", "reachable", "resolve_edges"]


@dataclass(frozen=True)
class Edge:
    """A connection between two physical transformations."""

    upstream: Transformation
    downstream: Transformation
    input_no: int
    side_tag: str | None
    partitioning: str
    key_selector: Callable[[Any], Any] | None


@dataclass
class JobPlan:
    """The operator instances of one worker, in topological order."""

    operators: list[Operator]
    sources: list[SourceOperator]
    by_id: dict[int, Operator]
    edges: list[Edge] = field(default_factory=list)

    def operator_of(self, transformation: Transformation) -> Operator:
        """The instance compiled from ``transformation``."""
        return self.by_id[transformation.id]


def _walk(
    node: Transformation, side_tag: str | None, partitioning: str, key: Any
) -> Iterator[tuple[Transformation, str | None, str, Any]]:
    if node.kind == "union":
        for upstream in node.inputs:
            yield from _walk(upstream, side_tag, partitioning, key)
    elif node.kind == "partition":
        # The partitioning nearest the consumer wins, as in Flink.
        if partitioning == "forward":
            partitioning, key = node.partitioning, node.key_selector
        yield from _walk(node.inputs[0], side_tag, partitioning, key)
    elif node.kind == "side_output":
        yield from _walk(node.inputs[0], node.side_tag, partitioning, key)
    else:
        yield node, side_tag, partitioning, key


def resolve_edges(transformations: list[Transformation]) -> list[Edge]:
    """All edges between physical transformations, virtual nodes resolved."""
    edges: list[Edge] = []
    for node in transformations:
        if not node.is_physical:
            continue
        for input_no, upstream in enumerate(node.inputs):
            for source, tag, partitioning, key in _walk(upstream, None, "forward", None):
                edges.append(Edge(source, node, input_no, tag, partitioning, key))
    return edges


def reachable(transformations: list[Transformation]) -> list[Transformation]:
    """Every transformation the registered ones depend on, in creation (topological) order."""
    seen: dict[int, Transformation] = {}
    stack = list(transformations)
    while stack:
        node = stack.pop()
        if node.id not in seen:
            seen[node.id] = node
            stack.extend(node.inputs)
    return sorted(seen.values(), key=lambda t: t.id)
