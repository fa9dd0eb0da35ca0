"""User-defined functions, as in ``pyflink.datastream.functions``.

Process functions *yield* their outputs. ``yield value`` emits to the main
output; ``yield output_tag, value`` emits to the side output named by an
:class:`~fraudstream.datastream.output_tag.OutputTag`, as in PyFlink.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fraudstream.exceptions import UnsupportedFeatureError

if TYPE_CHECKING:
    from fraudstream.datastream.state import (
        AggregatingState,
        AggregatingStateDescriptor,
        BroadcastState,
        ListState,
        ListStateDescriptor,
        MapState,
        MapStateDescriptor,
        ReadOnlyBroadcastState,
        ReducingState,
        ReducingStateDescriptor,
        StateDescriptor,
        ValueState,
        ValueStateDescriptor,
    )
    from fraudstream.datastream.time_domain import TimeDomain
    from fraudstream.datastream.timerservice import TimerService

__all__ = [
    "AggregateFunction",
    "BroadcastProcessFunction",
    "CoFlatMapFunction",
    "CoMapFunction",
    "CoProcessFunction",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "KeySelector",
    "KeyedBroadcastProcessFunction",
    "KeyedCoProcessFunction",
    "KeyedProcessFunction",
    "MapFunction",
    "ProcessFunction",
    "ReduceFunction",
    "RuntimeContext",
    "SinkFunction",
]


class RuntimeContext(ABC):
    """What a function can learn about, and ask of, the parallel instance running it."""

    @abstractmethod
    def get_task_name(self) -> str:
        """The operator's name."""

    @abstractmethod
    def get_number_of_parallel_subtasks(self) -> int:
        """The operator's parallelism."""

    @abstractmethod
    def get_max_number_of_parallel_subtasks(self) -> int:
        """The job's max parallelism (number of key groups)."""

    @abstractmethod
    def get_index_of_this_subtask(self) -> int:
        """This instance's index, from 0."""

    @abstractmethod
    def get_attempt_number(self) -> int:
        """How many times the job was restarted (0 on the first run)."""

    @abstractmethod
    def get_task_name_with_subtasks(self) -> str:
        """``name (index+1/parallelism)``."""

    @abstractmethod
    def get_job_parameter(self, key: str, default_value: str) -> str:
        """A global job parameter."""

    @abstractmethod
    def get_state(self, state_descriptor: ValueStateDescriptor) -> ValueState[Any]:
        """The keyed value state of that descriptor."""

    @abstractmethod
    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState[Any]:
        """The keyed list state of that descriptor."""

    @abstractmethod
    def get_map_state(self, state_descriptor: MapStateDescriptor) -> MapState[Any, Any]:
        """The keyed map state of that descriptor."""

    @abstractmethod
    def get_reducing_state(self, state_descriptor: ReducingStateDescriptor) -> ReducingState[Any]:
        """The keyed reducing state of that descriptor."""

    @abstractmethod
    def get_aggregating_state(
        self, state_descriptor: AggregatingStateDescriptor
    ) -> AggregatingState[Any, Any]:
        """The keyed aggregating state of that descriptor."""

    def get_metrics_group(self) -> Any:
        """Not supported: metrics are exposed by the service instead."""
        raise UnsupportedFeatureError(
            "RuntimeContext.get_metrics_group", "the /metrics endpoint of `fraudstream serve`"
        )


class Function:
    """Base of user functions: ``open`` before the first record, ``close`` after the last."""

    def open(self, runtime_context: RuntimeContext) -> None:
        """Called once per parallel instance before any record; create state here."""

    def close(self) -> None:
        """Called once per parallel instance after the last record or timer."""


class MapFunction(Function):
    """One output per input."""

    @abstractmethod
    def map(self, value: Any) -> Any:
        """The output for ``value``."""


class FlatMapFunction(Function):
    """Zero or more outputs per input."""

    @abstractmethod
    def flat_map(self, value: Any) -> Iterable[Any]:
        """Yield the outputs for ``value``."""


class FilterFunction(Function):
    """Keeps the inputs for which ``filter`` is true."""

    @abstractmethod
    def filter(self, value: Any) -> bool:
        """Whether to keep ``value``."""


class KeySelector(Function):
    """Extracts the key of a record."""

    @abstractmethod
    def get_key(self, value: Any) -> Any:
        """The key of ``value``."""


class ReduceFunction(Function):
    """Combines two values of one type into one."""

    @abstractmethod
    def reduce(self, value1: Any, value2: Any) -> Any:
        """The combination of ``value1`` and ``value2``."""


class AggregateFunction(Function):
    """Incremental aggregation through an accumulator."""

    @abstractmethod
    def create_accumulator(self) -> Any:
        """A new, empty accumulator."""

    @abstractmethod
    def add(self, value: Any, accumulator: Any) -> Any:
        """``accumulator`` with ``value`` added; may return the same object."""

    @abstractmethod
    def get_result(self, accumulator: Any) -> Any:
        """The result for ``accumulator``."""

    def merge(self, acc_a: Any, acc_b: Any) -> Any:
        """Two accumulators combined into one."""
        raise NotImplementedError


class SinkFunction(Function):
    """A user sink called for every record (``DataStream.add_sink``)."""

    def invoke(self, value: Any, context: Any) -> None:
        """Write ``value``."""
        raise NotImplementedError


class _TimerContext(ABC):
    @abstractmethod
    def timestamp(self) -> int | None:
        """The timestamp of the current record or timer, ``None`` if it has none."""

    @abstractmethod
    def timer_service(self) -> TimerService:
        """Clocks and timers."""


class ProcessFunction(Function):
    """Processes each record of a stream; may emit to side outputs."""

    class Context(_TimerContext):
        """Context of ``process_element``."""

    @abstractmethod
    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any] | None:
        """Yield outputs for ``value``."""


class KeyedProcessFunction(Function):
    """Processes each record of a keyed stream, with keyed state and timers.

    Order of calls, per parallel instance:

    1. ``open(runtime_context)`` once, before anything else: create state handles here.
    2. ``process_element(value, ctx)`` for each record, with keyed state scoped to the
       record's key (``ctx.get_current_key()``).
    3. ``on_timer(timestamp, ctx)`` whenever a timer fires, with keyed state scoped to the
       key that registered it; ``ctx.time_domain()`` tells event from processing time.
       Timers fire in timestamp order, event-time ones when the watermark reaches them
       (between records, never during one), processing-time ones when the clock does.
    4. ``close()`` once, after the last record and, for bounded input, after the final
       watermark has fired every pending event-time timer.
    """

    class Context(_TimerContext):
        """Context of ``process_element``."""

        @abstractmethod
        def get_current_key(self) -> Any:
            """The key of the current record."""

    class OnTimerContext(Context):
        """Context of ``on_timer``."""

        @abstractmethod
        def time_domain(self) -> TimeDomain:
            """Whether the firing timer is an event-time or processing-time timer."""

    @abstractmethod
    def process_element(
        self, value: Any, ctx: KeyedProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Yield outputs for ``value``."""

    def on_timer(
        self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext
    ) -> Iterable[Any] | None:
        """Yield outputs when a timer registered for the current key fires."""
        return None


class CoMapFunction(Function):
    """One output per input, with a method per input of connected streams."""

    @abstractmethod
    def map1(self, value: Any) -> Any:
        """The output for a record of the first input."""

    @abstractmethod
    def map2(self, value: Any) -> Any:
        """The output for a record of the second input."""


class CoFlatMapFunction(Function):
    """Zero or more outputs per input, with a method per input of connected streams."""

    @abstractmethod
    def flat_map1(self, value: Any) -> Iterable[Any]:
        """Yield outputs for a record of the first input."""

    @abstractmethod
    def flat_map2(self, value: Any) -> Iterable[Any]:
        """Yield outputs for a record of the second input."""


class CoProcessFunction(Function):
    """Processes two connected streams."""

    class Context(_TimerContext):
        """Context of ``process_element1`` / ``process_element2``."""

    @abstractmethod
    def process_element1(self, value: Any, ctx: CoProcessFunction.Context) -> Iterable[Any] | None:
        """Yield outputs for a record of the first input."""

    @abstractmethod
    def process_element2(self, value: Any, ctx: CoProcessFunction.Context) -> Iterable[Any] | None:
        """Yield outputs for a record of the second input."""


class KeyedCoProcessFunction(Function):
    """Processes two connected keyed streams, with keyed state and timers."""

    class Context(_TimerContext):
        """Context of ``process_element1`` / ``process_element2``."""

        @abstractmethod
        def get_current_key(self) -> Any:
            """The key of the current record."""

    class OnTimerContext(Context):
        """Context of ``on_timer``."""

        @abstractmethod
        def time_domain(self) -> TimeDomain:
            """The firing timer's time domain."""

    @abstractmethod
    def process_element1(
        self, value: Any, ctx: KeyedCoProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Yield outputs for a record of the first input."""

    @abstractmethod
    def process_element2(
        self, value: Any, ctx: KeyedCoProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Yield outputs for a record of the second input."""

    def on_timer(
        self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext
    ) -> Iterable[Any] | None:
        """Yield outputs when a timer fires."""
        return None


class _BaseBroadcastContext(ABC):
    @abstractmethod
    def timestamp(self) -> int | None:
        """The timestamp of the current record, ``None`` if it has none."""

    @abstractmethod
    def current_processing_time(self) -> int:
        """The processing-time clock."""

    @abstractmethod
    def current_watermark(self) -> int:
        """The current watermark."""


class BroadcastProcessFunction(Function):
    """Processes a non-keyed stream connected with a broadcast stream."""

    class ReadOnlyContext(_BaseBroadcastContext):
        """Context of ``process_element``: broadcast state is read only."""

        @abstractmethod
        def get_broadcast_state(
            self, state_descriptor: MapStateDescriptor
        ) -> ReadOnlyBroadcastState[Any, Any]:
            """The broadcast state of that descriptor."""

    class Context(_BaseBroadcastContext):
        """Context of ``process_broadcast_element``: broadcast state is writable."""

        @abstractmethod
        def get_broadcast_state(
            self, state_descriptor: MapStateDescriptor
        ) -> BroadcastState[Any, Any]:
            """The broadcast state of that descriptor."""

    @abstractmethod
    def process_element(
        self, value: Any, ctx: BroadcastProcessFunction.ReadOnlyContext
    ) -> Iterable[Any] | None:
        """Yield outputs for a record of the non-broadcast input."""

    @abstractmethod
    def process_broadcast_element(
        self, value: Any, ctx: BroadcastProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Yield outputs for a broadcast record (seen by every parallel instance)."""


class KeyedBroadcastProcessFunction(Function):
    """Processes a keyed stream connected with a broadcast stream, with keyed state and timers.

    ``process_broadcast_element`` runs on every parallel instance for every broadcast
    record and must change broadcast state the same way on each; it can reach every
    key's state through ``ctx.apply_to_keyed_state``. ``process_element`` sees the
    broadcast state read-only.
    """

    class ReadOnlyContext(_BaseBroadcastContext):
        """Context of ``process_element``."""

        @abstractmethod
        def get_broadcast_state(
            self, state_descriptor: MapStateDescriptor
        ) -> ReadOnlyBroadcastState[Any, Any]:
            """The broadcast state of that descriptor, read only."""

        @abstractmethod
        def timer_service(self) -> TimerService:
            """Clocks and timers."""

        @abstractmethod
        def get_current_key(self) -> Any:
            """The key of the current record."""

    class Context(_BaseBroadcastContext):
        """Context of ``process_broadcast_element``."""

        @abstractmethod
        def get_broadcast_state(
            self, state_descriptor: MapStateDescriptor
        ) -> BroadcastState[Any, Any]:
            """The broadcast state of that descriptor, writable."""

        @abstractmethod
        def apply_to_keyed_state(self, state_descriptor: StateDescriptor, function: Any) -> None:
            """Call ``function(key, state)`` for every key that has state of that descriptor."""

    class OnTimerContext(ReadOnlyContext):
        """Context of ``on_timer``."""

        @abstractmethod
        def time_domain(self) -> TimeDomain:
            """The firing timer's time domain."""

    @abstractmethod
    def process_element(
        self, value: Any, ctx: KeyedBroadcastProcessFunction.ReadOnlyContext
    ) -> Iterable[Any] | None:
        """Yield outputs for a record of the keyed input."""

    @abstractmethod
    def process_broadcast_element(
        self, value: Any, ctx: KeyedBroadcastProcessFunction.Context
    ) -> Iterable[Any] | None:
        """Yield outputs for a broadcast record."""

    def on_timer(
        self, timestamp: int, ctx: KeyedBroadcastProcessFunction.OnTimerContext
    ) -> Iterable[Any] | None:
        """Yield outputs when a timer fires."""
        return None


_UNSUPPORTED = {
    "WindowFunction": "windows",
    "ProcessWindowFunction": "windows",
    "AllWindowFunction": "windows",
    "ProcessAllWindowFunction": "windows",
    "SourceFunction": "legacy SourceFunction sources",
    "Partitioner": "custom partitioning",
    "BroadcastProcessFunction.ReadOnlyContext": "",
}


def __getattr__(name: str) -> Any:
    if name in _UNSUPPORTED:
        raise UnsupportedFeatureError(
            f"pyflink.datastream.functions.{name} ({_UNSUPPORTED[name]})",
            "KeyedProcessFunction with state and timers (windows are built that way, see "
            "fraudstream.fraud for sliding windows), from_collection/from_source sources",
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
