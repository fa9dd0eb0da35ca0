"""Streams: ``DataStream``, ``KeyedStream``, connected and broadcast streams.

Every method records a transformation in the job graph and returns a new stream;
nothing runs until ``execute()`` (or ``execute_and_collect()``). Arguments are
checked here, when the graph is built, so a mistake fails at the line that made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fraudstream.common.typeinfo import TypeInformation, Types
from fraudstream.common.watermark_strategy import WatermarkStrategy
from fraudstream.connectors.base import Sink
from fraudstream.datastream._adapters import (
    KeyedFunctionAdapter,
    as_key_selector,
    require_callable,
    require_method,
)
from fraudstream.datastream.output_tag import OutputTag
from fraudstream.datastream.state import MapStateDescriptor
from fraudstream.exceptions import UnsupportedFeatureError
from fraudstream.runtime.graph import Transformation
from fraudstream.runtime.operators import process as ops
from fraudstream.runtime.operators import sinks, two_input
from fraudstream.runtime.operators.sources import TimestampsAndWatermarksOperator

if TYPE_CHECKING:
    from fraudstream.datastream.stream_execution_environment import StreamExecutionEnvironment

__all__ = [
    "BroadcastConnectedStream",
    "BroadcastStream",
    "CloseableIterator",
    "ConnectedStreams",
    "DataStream",
    "DataStreamSink",
    "KeyedStream",
]

_SUBSET = (
    "map, flat_map, filter, key_by, process, union, connect, broadcast, "
    "assign_timestamps_and_watermarks, get_side_output, print, sink_to, add_sink, "
    "execute_and_collect, name, uid; KeyedStream.reduce/sum/min/max"
)
_UNSUPPORTED_METHODS = {
    "window": "windows",
    "window_all": "windows",
    "count_window": "windows",
    "count_window_all": "windows",
    "partition_custom": "custom partitioning",
    "iterate": "iterations",
    "cache": "cached streams",
    "map_partition": "map_partition",
    "sort_partition": "sort_partition",
    "aggregate": "full-stream aggregations",
    "full_window_partition": "full window partitions",
}


def _type(output_type: Any) -> TypeInformation:
    if output_type is None:
        return Types.PICKLED_BYTE_ARRAY()
    if not isinstance(output_type, TypeInformation):
        raise TypeError(
            f"output_type must be a TypeInformation (e.g. Types.STRING()), got {output_type!r}"
        )
    return output_type


class DataStream:
    """A stream of records (``pyflink.datastream.DataStream``)."""

    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation) -> None:
        self._env = env
        self._t = transformation

    def __getattr__(self, name: str) -> Any:
        if name in _UNSUPPORTED_METHODS:
            raise UnsupportedFeatureError(
                f"{type(self).__name__}.{name} ({_UNSUPPORTED_METHODS[name]})", _SUBSET
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- naming and settings ---------------------------------------------------------------------
    def get_name(self) -> str:
        """The operator's name."""
        return self._t.name

    def name(self, name: str) -> DataStream:
        """Name the operator that produces this stream."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self._t.name = name
        return self

    def uid(self, uid: str) -> DataStream:
        """Give the operator a stable id, used to match its state in checkpoints."""
        if not isinstance(uid, str) or not uid:
            raise ValueError(f"uid must be a non-empty string, got {uid!r}")
        self._t.uid = uid
        return self

    def set_uid_hash(self, uid_hash: str) -> DataStream:
        """Accepted for compatibility; use ``uid``."""
        return self.uid(uid_hash)

    def set_description(self, description: str) -> DataStream:
        """Accepted for compatibility."""
        return self

    def get_type(self) -> TypeInformation:
        """The declared type of the records."""
        return self._t.output_type

    def set_parallelism(self, parallelism: int) -> DataStream:
        """The parallelism of this operator (not above the job's)."""
        self._t.parallelism = self._env._check_parallelism(parallelism)
        return self

    def set_max_parallelism(self, max_parallelism: int) -> DataStream:
        """The number of key groups of this operator."""
        self._t.max_parallelism = self._env._check_parallelism(max_parallelism)
        return self

    def slot_sharing_group(self, slot_sharing_group: Any) -> DataStream:
        """Accepted for compatibility (one process per worker shares everything)."""
        return self

    def disable_chaining(self) -> DataStream:
        """Accepted for compatibility; chaining never changes results."""
        return self

    def start_new_chain(self) -> DataStream:
        """Accepted for compatibility; chaining never changes results."""
        return self

    def set_buffer_timeout(self, timeout_millis: int) -> DataStream:
        """Accepted for compatibility."""
        return self

    def force_non_parallel(self) -> DataStream:
        """Run this operator with parallelism 1."""
        self._t.parallelism = 1
        self._t.max_parallelism = 1
        return self

    def side_output_on_error(self, output_tag: OutputTag) -> DataStream:
        """Route records whose processing raises to ``output_tag`` (fraudstream extension).

        Instead of failing the job, the operator emits ``(record, error message)`` to that
        side output and continues; read it with ``get_side_output(output_tag)``.
        """
        if not isinstance(output_tag, OutputTag):
            raise TypeError(f"expected an OutputTag, got {output_tag!r}")
        self._t.error_tag = output_tag.tag_id  # type: ignore[attr-defined]
        return self

    # -- building --------------------------------------------------------------------------------
    def _one_input(
        self,
        name: str,
        factory: Callable[[str, str | None], Any],
        output_type: TypeInformation,
        source: Transformation | None = None,
    ) -> Transformation:
        node = Transformation("one_input", name, [source or self._t], output_type=output_type)
        node.factory = self._env._error_routing(node, factory)
        return self._env._add(node)

    def map(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply ``func`` (a ``MapFunction`` or callable) to every record."""
        require_callable(func, "map", "map")
        t = self._one_input("Map", lambda n, u: ops.MapOperator(n, u, func), _type(output_type))
        return DataStream(self._env, t)

    def flat_map(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply ``func`` (a ``FlatMapFunction`` or generator function) to every record."""
        require_callable(func, "flat_map", "flat_map")
        t = self._one_input(
            "FlatMap", lambda n, u: ops.FlatMapOperator(n, u, func), _type(output_type)
        )
        return DataStream(self._env, t)

    def filter(self, func: Any) -> DataStream:
        """Keep the records for which ``func`` is true."""
        require_callable(func, "filter", "filter")
        t = self._one_input(
            "Filter", lambda n, u: ops.FilterOperator(n, u, func), self._t.output_type
        )
        return DataStream(self._env, t)

    def process(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply a ``ProcessFunction`` to every record."""
        require_method(func, ("process_element",), "process", "ProcessFunction")
        if hasattr(func, "on_timer") and type(func).on_timer is not None:
            from fraudstream.datastream.functions import KeyedProcessFunction

            if isinstance(func, KeyedProcessFunction):
                raise TypeError(
                    "a KeyedProcessFunction needs a keyed stream: call key_by(...) first"
                )
        t = self._one_input(
            "Process", lambda n, u: ops.ProcessOperator(n, u, func), _type(output_type)
        )
        return DataStream(self._env, t)

    def key_by(self, key_selector: Any, key_type: TypeInformation | None = None) -> KeyedStream:
        """Partition the stream by key; the next operator runs in a keyed context."""
        selector = as_key_selector(key_selector)
        node = Transformation(
            "partition",
            "KeyBy",
            [self._t],
            output_type=self._t.output_type,
            partitioning="hash",
            key_selector=selector,
        )
        return KeyedStream(self._env, self._env._add(node), selector)

    def _partition(self, how: str) -> DataStream:
        node = Transformation("partition", how, [self._t], output_type=self._t.output_type)
        node.partitioning = how
        return DataStream(self._env, self._env._add(node))

    def shuffle(self) -> DataStream:
        """Spread records randomly over the next operator's instances."""
        return self._partition("shuffle")

    def rebalance(self) -> DataStream:
        """Spread records round-robin over the next operator's instances."""
        return self._partition("rebalance")

    def rescale(self) -> DataStream:
        """Spread records round-robin (locally, in Flink) over the next instances."""
        return self._partition("rescale")

    def forward(self) -> DataStream:
        """Send records to the next operator's instance of the same index."""
        return self._partition("forward")

    def global_(self) -> DataStream:
        """Send every record to the first instance of the next operator."""
        return self._partition("global")

    def broadcast(self, *broadcast_state_descriptors: MapStateDescriptor) -> Any:
        """Send every record to every instance; with descriptors, a ``BroadcastStream``."""
        for descriptor in broadcast_state_descriptors:
            if not isinstance(descriptor, MapStateDescriptor):
                raise TypeError(f"broadcast state needs MapStateDescriptors, got {descriptor!r}")
        node = self._partition("broadcast")
        if not broadcast_state_descriptors:
            return node
        return BroadcastStream(self._env, node._t, list(broadcast_state_descriptors))

    def union(self, *streams: DataStream) -> DataStream:
        """One stream of the records of this and ``streams`` (same type)."""
        for stream in streams:
            if not isinstance(stream, DataStream):
                raise TypeError(f"union expects DataStreams, got {stream!r}")
            if stream._env is not self._env:
                raise ValueError("cannot union streams of different execution environments")
        node = Transformation(
            "union", "Union", [self._t] + [s._t for s in streams], output_type=self._t.output_type
        )
        return DataStream(self._env, self._env._add(node))

    def connect(self, ds: Any) -> Any:
        """Connect with another stream (``ConnectedStreams``) or a ``BroadcastStream``."""
        if isinstance(ds, BroadcastStream):
            return BroadcastConnectedStream(self, ds)
        if not isinstance(ds, DataStream):
            raise TypeError(f"connect expects a DataStream or BroadcastStream, got {ds!r}")
        return ConnectedStreams(self, ds)

    def assign_timestamps_and_watermarks(self, watermark_strategy: WatermarkStrategy) -> DataStream:
        """Stamp records with event time and generate watermarks."""
        if not isinstance(watermark_strategy, WatermarkStrategy):
            raise TypeError(f"expected a WatermarkStrategy, got {watermark_strategy!r}")
        t = self._one_input(
            "Timestamps/Watermarks",
            lambda n, u: TimestampsAndWatermarksOperator(n, u, watermark_strategy),
            self._t.output_type,
        )
        # As in Flink: the same parallelism as the input, so each reader's records reach
        # one watermark generator in the reader's order (no round-robin in between).
        upstream = self._t
        while not upstream.is_physical and upstream.inputs:
            upstream = upstream.inputs[0]
        t.parallelism = upstream.parallelism
        t.max_parallelism = upstream.max_parallelism
        return DataStream(self._env, t)

    def get_side_output(self, output_tag: OutputTag) -> DataStream:
        """The records the producing operator emitted to ``output_tag``."""
        if not isinstance(output_tag, OutputTag):
            raise TypeError(f"get_side_output expects an OutputTag, got {output_tag!r}")
        if not self._t.is_physical:
            raise ValueError("side outputs can only be taken from an operator's output")
        node = Transformation(
            "side_output",
            f"SideOutput({output_tag.tag_id})",
            [self._t],
            output_type=output_tag.type_info,
            side_tag=output_tag.tag_id,
        )
        return DataStream(self._env, self._env._add(node))

    # -- sinks -----------------------------------------------------------------------------------
    def _sink(self, name: str, factory: Callable[[str, str | None], Any]) -> DataStreamSink:
        node = Transformation("sink", name, [self._t], factory=factory)
        return DataStreamSink(self._env, self._env._add(node))

    def print(self, sink_identifier: str | None = None) -> DataStreamSink:
        """Print every record on stdout, formatted as Flink prints it."""
        if sink_identifier is not None and not isinstance(sink_identifier, str):
            raise TypeError(f"sink_identifier must be a string, got {sink_identifier!r}")
        type_info = self._t.output_type
        return self._sink(
            "Print to Std. Out",
            lambda n, u: sinks.PrintSinkOperator(n, u, type_info, sink_identifier),
        )

    def sink_to(self, sink: Sink[Any]) -> DataStreamSink:
        """Write to a connector sink (exactly-once when checkpointing is enabled)."""
        if not isinstance(sink, Sink):
            raise TypeError(f"sink_to expects a fraudstream Sink, got {sink!r}")
        env = self._env
        return self._sink(
            type(sink).__name__,
            lambda n, u: sinks.ConnectorSinkOperator(n, u, sink, env._checkpoint_interval_ms > 0),
        )

    def add_sink(self, sink_func: Any) -> DataStreamSink:
        """Write with a ``SinkFunction`` (``invoke(value, context)``), or a connector sink."""
        if isinstance(sink_func, Sink):
            return self.sink_to(sink_func)
        require_callable(sink_func, "invoke", "add_sink")
        return self._sink("Sink", lambda n, u: sinks.SinkFunctionOperator(n, u, sink_func))

    def execute_and_collect(
        self, job_execution_name: str | None = None, limit: int | None = None
    ) -> Any:
        """Run the job and return its records: an iterator, or a list of ``limit`` records."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int, got {limit!r}")
        iterator = self._env._execute_and_collect(self._t, job_execution_name)
        if limit is None:
            return iterator
        with iterator:
            out: list[Any] = []
            for record in iterator:
                if len(out) >= limit:
                    break
                out.append(record)
            return out


class KeyedStream(DataStream):
    """A stream partitioned by key; operators on it have keyed state and timers."""

    def __init__(
        self,
        env: StreamExecutionEnvironment,
        transformation: Transformation,
        key_selector: Callable[[Any], Any],
    ) -> None:
        super().__init__(env, transformation)
        self._key_selector = key_selector

    def _keyed(self, name: str, function: Any, output_type: TypeInformation) -> DataStream:
        key = self._key_selector
        t = self._one_input(
            name, lambda n, u: ops.KeyedProcessOperator(n, u, function, key), output_type
        )
        return DataStream(self._env, t)

    def process(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply a ``KeyedProcessFunction`` (keyed state, timers) to every record."""
        require_method(func, ("process_element",), "KeyedStream.process", "KeyedProcessFunction")
        return self._keyed("KeyedProcess", func, _type(output_type))

    def map(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply ``func`` per record; it may use keyed state through its runtime context."""
        require_callable(func, "map", "map")
        return self._keyed("Map", KeyedFunctionAdapter(func, "map"), _type(output_type))

    def flat_map(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply ``func`` per record, zero or more outputs, with keyed state."""
        require_callable(func, "flat_map", "flat_map")
        return self._keyed("FlatMap", KeyedFunctionAdapter(func, "flat_map"), _type(output_type))

    def filter(self, func: Any) -> DataStream:
        """Keep records for which ``func`` is true; it may use keyed state."""
        require_callable(func, "filter", "filter")
        return self._keyed("Filter", KeyedFunctionAdapter(func, "filter"), self._t.output_type)

    def reduce(self, func: Any) -> DataStream:
        """Rolling reduce per key: emits each key's running reduction per record."""
        require_callable(func, "reduce", "reduce")
        key = self._key_selector
        t = self._one_input(
            "Reduce", lambda n, u: ops.KeyedReduceOperator(n, u, func, key), self._t.output_type
        )
        return DataStream(self._env, t)

    def _field_reduce(self, position: int | str, combine: Callable[[Any, Any], Any]) -> DataStream:
        def reduce(acc: Any, value: Any) -> Any:
            return _replace_field(acc, position, combine(acc[position], value[position]))

        return self.reduce(reduce)

    def sum(self, position_to_sum: int | str = 0) -> DataStream:
        """Rolling sum of a field per key."""
        return self._field_reduce(position_to_sum, lambda a, b: a + b)

    def min(self, position_to_min: int | str = 0) -> DataStream:
        """Rolling minimum of a field per key (other fields from the first record)."""
        return self._field_reduce(position_to_min, min)

    def max(self, position_to_max: int | str = 0) -> DataStream:
        """Rolling maximum of a field per key (other fields from the first record)."""
        return self._field_reduce(position_to_max, max)

    def min_by(self, position_to_min_by: int | str = 0) -> DataStream:
        """Rolling record with the minimum field per key."""
        pos = position_to_min_by
        return self.reduce(lambda acc, v: v if v[pos] < acc[pos] else acc)

    def max_by(self, position_to_max_by: int | str = 0) -> DataStream:
        """Rolling record with the maximum field per key."""
        pos = position_to_max_by
        return self.reduce(lambda acc, v: v if v[pos] > acc[pos] else acc)


def _replace_field(record: Any, position: int | str, value: Any) -> Any:
    """A copy of ``record`` with one field (index or Row field name) replaced."""
    from fraudstream.common.types import Row

    if isinstance(record, Row):
        values = list(record)
        names = record._fields
        index = names.index(position) if isinstance(position, str) and names else position
        values[index] = value  # type: ignore[index]
        copy = Row(*values)
        if names:
            copy.set_field_names(names)
        return copy
    if isinstance(position, str):
        raise TypeError(f"field name {position!r} needs Row records, got {record!r}")
    if isinstance(record, list):
        copy_list = list(record)
        copy_list[position] = value
        return copy_list
    if isinstance(record, tuple):
        items = list(record)
        items[position] = value
        return type(record)(*items) if hasattr(record, "_fields") else tuple(items)
    raise TypeError(
        f"cannot aggregate field {position!r} of {record!r}: expected a tuple, list or Row"
    )


class ConnectedStreams:
    """Two streams processed together by one two-input function."""

    def __init__(self, stream1: DataStream, stream2: DataStream) -> None:
        self.stream1 = stream1
        self.stream2 = stream2

    def key_by(
        self, key_selector1: Any, key_selector2: Any, key_type: Any = None
    ) -> ConnectedStreams:
        """Key both inputs (keys of equal value meet in the same instance)."""
        return ConnectedStreams(
            self.stream1.key_by(key_selector1), self.stream2.key_by(key_selector2)
        )

    def _keys(self) -> tuple[Any, Any] | None:
        first, second = self.stream1, self.stream2
        if isinstance(first, KeyedStream) and isinstance(second, KeyedStream):
            return first._key_selector, second._key_selector
        if isinstance(first, KeyedStream) or isinstance(second, KeyedStream):
            raise TypeError("connect keyed streams on both sides, or on neither")
        return None

    def _two_input(self, name: str, factory: Any, output_type: TypeInformation) -> DataStream:
        env = self.stream1._env
        node = Transformation(
            "two_input", name, [self.stream1._t, self.stream2._t], output_type=output_type
        )
        node.factory = env._error_routing(node, factory)
        return DataStream(env, env._add(node))

    def map(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply a ``CoMapFunction``."""
        require_method(func, ("map1", "map2"), "ConnectedStreams.map", "CoMapFunction")
        return self._two_input(
            "CoMap", lambda n, u: two_input.CoMapOperator(n, u, func), _type(output_type)
        )

    def flat_map(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply a ``CoFlatMapFunction``."""
        require_method(
            func, ("flat_map1", "flat_map2"), "ConnectedStreams.flat_map", "CoFlatMapFunction"
        )
        return self._two_input(
            "CoFlatMap", lambda n, u: two_input.CoFlatMapOperator(n, u, func), _type(output_type)
        )

    def process(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply a ``CoProcessFunction`` or, on keyed inputs, a ``KeyedCoProcessFunction``."""
        require_method(
            func,
            ("process_element1", "process_element2"),
            "ConnectedStreams.process",
            "CoProcessFunction or KeyedCoProcessFunction",
        )
        keys = self._keys()
        if keys is None:
            return self._two_input(
                "CoProcess",
                lambda n, u: two_input.CoProcessOperator(n, u, func),
                _type(output_type),
            )
        k1, k2 = keys
        return self._two_input(
            "KeyedCoProcess",
            lambda n, u: two_input.KeyedCoProcessOperator(n, u, func, k1, k2),
            _type(output_type),
        )


class BroadcastStream:
    """A stream broadcast to every instance, carrying broadcast state descriptors."""

    def __init__(
        self,
        env: StreamExecutionEnvironment,
        transformation: Transformation,
        descriptors: list[MapStateDescriptor],
    ) -> None:
        self._env = env
        self._t = transformation
        self.descriptors = descriptors


class BroadcastConnectedStream:
    """A (keyed or non-keyed) stream connected with a broadcast stream."""

    def __init__(self, stream: DataStream, broadcast: BroadcastStream) -> None:
        self.stream = stream
        self.broadcast_stream = broadcast

    def process(self, func: Any, output_type: TypeInformation | None = None) -> DataStream:
        """Apply a ``BroadcastProcessFunction`` or ``KeyedBroadcastProcessFunction``."""
        require_method(
            func,
            ("process_element", "process_broadcast_element"),
            "BroadcastConnectedStream.process",
            "BroadcastProcessFunction or KeyedBroadcastProcessFunction",
        )
        env = self.stream._env
        descriptors = self.broadcast_stream.descriptors
        if isinstance(self.stream, KeyedStream):
            key = self.stream._key_selector

            def factory(n: str, u: str | None) -> Any:
                return two_input.KeyedBroadcastProcessOperator(n, u, func, key, descriptors)

            name = "KeyedBroadcastProcess"
        else:
            from fraudstream.datastream.functions import KeyedBroadcastProcessFunction

            if isinstance(func, KeyedBroadcastProcessFunction):
                raise TypeError(
                    "a KeyedBroadcastProcessFunction needs a keyed stream: key_by first"
                )

            def factory(n: str, u: str | None) -> Any:
                return two_input.BroadcastProcessOperator(n, u, func, descriptors)

            name = "BroadcastProcess"
        node = Transformation(
            "two_input",
            name,
            [self.stream._t, self.broadcast_stream._t],
            output_type=_type(output_type),
        )
        node.factory = env._error_routing(node, factory)
        return DataStream(env, env._add(node))


class DataStreamSink:
    """The end of a stream, returned by ``print``, ``sink_to`` and ``add_sink``."""

    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation) -> None:
        self._env = env
        self._t = transformation

    def name(self, name: str) -> DataStreamSink:
        """Name the sink."""
        self._t.name = name
        return self

    def uid(self, uid: str) -> DataStreamSink:
        """Give the sink a stable id for checkpoints."""
        self._t.uid = uid
        return self

    def set_uid_hash(self, uid_hash: str) -> DataStreamSink:
        """Accepted for compatibility; use ``uid``."""
        return self.uid(uid_hash)

    def set_parallelism(self, parallelism: int) -> DataStreamSink:
        """The sink's parallelism."""
        self._t.parallelism = self._env._check_parallelism(parallelism)
        return self

    def set_description(self, description: str) -> DataStreamSink:
        """Accepted for compatibility."""
        return self

    def disable_chaining(self) -> DataStreamSink:
        """Accepted for compatibility."""
        return self

    def slot_sharing_group(self, slot_sharing_group: Any) -> DataStreamSink:
        """Accepted for compatibility."""
        return self


class CloseableIterator(Iterator[Any]):
    """Results of ``execute_and_collect``; the job runs as the iterator is consumed."""

    def __init__(self, pull: Callable[[], tuple[bool, Any]], close: Callable[[], None]) -> None:
        self._pull = pull
        self._close = close
        self._closed = False

    def __iter__(self) -> CloseableIterator:
        return self

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        ok, value = self._pull()
        if not ok:
            self.close()
            raise StopIteration
        return value

    def close(self) -> None:
        """Stop the job (if still running) and release it."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> CloseableIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
