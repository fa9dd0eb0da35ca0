"""The runtime's implementations of the contexts and services user functions see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fraudstream.datastream.functions import RuntimeContext
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
from fraudstream.exceptions import ConfigurationError

if TYPE_CHECKING:
    from fraudstream.runtime.operators.base import Operator
    from fraudstream.runtime.timers import TimerQueue
    from fraudstream.state.base import KeyedStateBackend

_NOT_KEYED = "keyed state is only available on a keyed stream: call key_by(...) before process(...)"
_NO_TIMERS = "timers are only available on a keyed stream: call key_by(...) before process(...)"


class OperatorRuntimeContext(RuntimeContext):
    """The ``RuntimeContext`` handed to ``open``."""

    def __init__(self, operator: Operator, backend: KeyedStateBackend | None) -> None:
        self._op = operator
        self._backend = backend

    def get_task_name(self) -> str:
        """The operator's name."""
        return self._op.name

    def get_number_of_parallel_subtasks(self) -> int:
        """The operator's parallelism."""
        return self._op.task.parallelism

    def get_max_number_of_parallel_subtasks(self) -> int:
        """The number of key groups."""
        return self._op.task.max_parallelism

    def get_index_of_this_subtask(self) -> int:
        """This instance's index."""
        return self._op.task.subtask_index

    def get_attempt_number(self) -> int:
        """How many times the job was restored."""
        return self._op.task.attempt

    def get_task_name_with_subtasks(self) -> str:
        """``name (i/p)``."""
        task = self._op.task
        return f"{self._op.name} ({task.subtask_index + 1}/{task.parallelism})"

    def get_job_parameter(self, key: str, default_value: str) -> str:
        """A global job parameter."""
        return self._op.task.job_parameters.get(key, default_value)

    def _state(self, descriptor: StateDescriptor, kind: type) -> Any:
        if self._backend is None:
            raise ConfigurationError(_NOT_KEYED)
        if not isinstance(descriptor, kind):
            raise TypeError(f"expected a {kind.__name__}, got {descriptor!r}")
        return self._backend.get_state(descriptor)

    def get_state(self, state_descriptor: ValueStateDescriptor) -> ValueState[Any]:
        """The keyed value state of that descriptor."""
        state: ValueState[Any] = self._state(state_descriptor, ValueStateDescriptor)
        return state

    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState[Any]:
        """The keyed list state of that descriptor."""
        state: ListState[Any] = self._state(state_descriptor, ListStateDescriptor)
        return state

    def get_map_state(self, state_descriptor: MapStateDescriptor) -> MapState[Any, Any]:
        """The keyed map state of that descriptor."""
        state: MapState[Any, Any] = self._state(state_descriptor, MapStateDescriptor)
        return state

    def get_reducing_state(self, state_descriptor: ReducingStateDescriptor) -> ReducingState[Any]:
        """The keyed reducing state of that descriptor."""
        state: ReducingState[Any] = self._state(state_descriptor, ReducingStateDescriptor)
        return state

    def get_aggregating_state(
        self, state_descriptor: AggregatingStateDescriptor
    ) -> AggregatingState[Any, Any]:
        """The keyed aggregating state of that descriptor."""
        state: AggregatingState[Any, Any] = self._state(
            state_descriptor, AggregatingStateDescriptor
        )
        return state


class KeyedTimerService(TimerService):
    """Timers of a keyed operator, registered for the backend's current key."""

    def __init__(
        self,
        operator: Operator,
        backend: KeyedStateBackend,
        event_timers: TimerQueue,
        processing_timers: TimerQueue,
    ) -> None:
        self._op = operator
        self._backend = backend
        self._event = event_timers
        self._processing = processing_timers

    def current_processing_time(self) -> int:
        """The processing-time clock."""
        return self._op.task.clock_ms()

    def current_watermark(self) -> int:
        """The operator's watermark."""
        return self._op.watermarks.current

    def register_processing_time_timer(self, timestamp: int) -> None:
        """Fire at processing time ``timestamp`` for the current key."""
        self._processing.register(int(timestamp), self._backend.current_key)

    def register_event_time_timer(self, timestamp: int) -> None:
        """Fire at watermark ``timestamp`` for the current key."""
        self._event.register(int(timestamp), self._backend.current_key)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        """Forget the current key's processing-time timer at ``timestamp``."""
        self._processing.delete(int(timestamp), self._backend.current_key)

    def delete_event_time_timer(self, timestamp: int) -> None:
        """Forget the current key's event-time timer at ``timestamp``."""
        self._event.delete(int(timestamp), self._backend.current_key)


class NonKeyedTimerService(TimerService):
    """Clocks without timers, for functions on non-keyed streams."""

    def __init__(self, operator: Operator) -> None:
        self._op = operator

    def current_processing_time(self) -> int:
        """The processing-time clock."""
        return self._op.task.clock_ms()

    def current_watermark(self) -> int:
        """The operator's watermark."""
        return self._op.watermarks.current

    def register_processing_time_timer(self, timestamp: int) -> None:
        """Not allowed off a keyed stream."""
        raise ConfigurationError(_NO_TIMERS)

    def register_event_time_timer(self, timestamp: int) -> None:
        """Not allowed off a keyed stream."""
        raise ConfigurationError(_NO_TIMERS)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        """Not allowed off a keyed stream."""
        raise ConfigurationError(_NO_TIMERS)

    def delete_event_time_timer(self, timestamp: int) -> None:
        """Not allowed off a keyed stream."""
        raise ConfigurationError(_NO_TIMERS)


class BroadcastStates:
    """The broadcast states of one operator instance, one dict per descriptor name."""

    def __init__(self, descriptors: list[MapStateDescriptor]) -> None:
        self.tables: dict[str, dict[Any, Any]] = {d.name: {} for d in descriptors}
        self._read_only: dict[str, ReadOnlyView] = {}
        self._writable: dict[str, WritableView] = {}

    def _table(self, descriptor: MapStateDescriptor) -> dict[Any, Any]:
        if not isinstance(descriptor, MapStateDescriptor):
            raise TypeError(f"broadcast state needs a MapStateDescriptor, got {descriptor!r}")
        table = self.tables.get(descriptor.name)
        if table is None:
            raise ConfigurationError(
                f"broadcast state {descriptor.name!r} does not exist; pass its descriptor to "
                f"DataStream.broadcast(...) (registered: {sorted(self.tables)})"
            )
        return table

    def read_only(self, descriptor: MapStateDescriptor) -> ReadOnlyView:
        """A read-only view of the state."""
        view = self._read_only.get(descriptor.name)
        if view is None:
            view = self._read_only[descriptor.name] = ReadOnlyView(self._table(descriptor))
        return view

    def writable(self, descriptor: MapStateDescriptor) -> WritableView:
        """A writable view of the state."""
        view = self._writable.get(descriptor.name)
        if view is None:
            view = self._writable[descriptor.name] = WritableView(self._table(descriptor))
        return view


class ReadOnlyView(ReadOnlyBroadcastState[Any, Any]):
    """Broadcast state, read only."""

    def __init__(self, table: dict[Any, Any]) -> None:
        self._table = table

    def get(self, key: Any) -> Any:
        """The value of ``key``, or ``None``."""
        return self._table.get(key)

    def contains(self, key: Any) -> bool:
        """Whether ``key`` is present."""
        return key in self._table

    def items(self) -> list[tuple[Any, Any]]:
        """All entries."""
        return list(self._table.items())

    def keys(self) -> list[Any]:
        """All keys."""
        return list(self._table)

    def values(self) -> list[Any]:
        """All values."""
        return list(self._table.values())

    def is_empty(self) -> bool:
        """Whether there are no entries."""
        return not self._table

    def put(self, key: Any, value: Any) -> None:
        """Refused: only ``process_broadcast_element`` may change broadcast state."""
        raise ConfigurationError(
            "broadcast state is read-only in process_element; change it in "
            "process_broadcast_element so every parallel instance changes it the same way"
        )

    remove = put


class WritableView(ReadOnlyView, BroadcastState[Any, Any]):
    """Broadcast state, writable."""

    def put(self, key: Any, value: Any) -> None:
        """Set ``key``."""
        self._table[key] = value

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Set several entries."""
        self._table.update(dict_value)

    def remove(self, key: Any) -> None:  # type: ignore[override]
        """Remove ``key``."""
        self._table.pop(key, None)

    def clear(self) -> None:
        """Remove every entry."""
        self._table.clear()


class FunctionContext:
    """The one context object every process-function flavour receives.

    It implements the union of PyFlink's context interfaces (timestamp, timers,
    current key, time domain, broadcast state, keyed-state traversal); the operator
    updates ``ts`` and ``domain`` before each call.
    """

    __slots__ = ("_apply", "_backend", "_broadcast", "_op", "_timers", "domain", "ts")

    def __init__(
        self,
        operator: Operator,
        timers: TimerService,
        backend: KeyedStateBackend | None = None,
        broadcast: BroadcastStates | None = None,
        apply_to_keyed_state: Any = None,
    ) -> None:
        self._op = operator
        self._timers = timers
        self._backend = backend
        self._broadcast = broadcast
        self._apply = apply_to_keyed_state
        self.ts: int | None = None
        self.domain: TimeDomain | None = None

    def timestamp(self) -> int | None:
        """The current record's (or timer's) timestamp, ``None`` when it has none."""
        return self.ts

    def timer_service(self) -> TimerService:
        """Clocks and timers."""
        return self._timers

    def get_current_key(self) -> Any:
        """The key of the current record or timer."""
        if self._backend is None:
            raise ConfigurationError(_NOT_KEYED)
        return self._backend.current_key

    def time_domain(self) -> TimeDomain:
        """The firing timer's time domain (only inside ``on_timer``)."""
        if self.domain is None:
            raise ConfigurationError("time_domain() is only available inside on_timer")
        return self.domain

    def current_processing_time(self) -> int:
        """The processing-time clock."""
        return self._op.task.clock_ms()

    def current_watermark(self) -> int:
        """The operator's watermark."""
        return self._op.watermarks.current

    def get_broadcast_state(self, state_descriptor: MapStateDescriptor) -> Any:
        """Broadcast state: writable on the broadcast side, read-only elsewhere."""
        if self._broadcast is None:
            raise ConfigurationError("broadcast state exists only on a broadcast-connected stream")
        if self._apply is not None:
            return self._broadcast.writable(state_descriptor)
        return self._broadcast.read_only(state_descriptor)

    def value_table(self, state_descriptor: ValueStateDescriptor) -> Any:
        """Batch hooks only (a fraudstream extension): a value state's values by key."""
        if self._backend is None:
            raise ConfigurationError(_NOT_KEYED)
        return self._backend.value_table(state_descriptor)

    def apply_to_keyed_state(self, state_descriptor: StateDescriptor, function: Any) -> None:
        """Call ``function(key, state)`` for every key with state of that descriptor."""
        if self._apply is None:
            raise ConfigurationError(
                "apply_to_keyed_state is only available in process_broadcast_element "
                "of a KeyedBroadcastProcessFunction"
            )
        self._apply(state_descriptor, function)
