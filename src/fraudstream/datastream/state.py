"""Keyed and broadcast state: descriptors, state interfaces and TTL (``pyflink.datastream.state``).

Keyed state is always scoped to the key of the record (or timer) being processed:
``value()`` in ``process_element`` reads the value of that record's key only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Any, Generic, TypeVar

from fraudstream.common.time import Duration, Time
from fraudstream.common.typeinfo import TypeInformation, Types

__all__ = [
    "AggregatingState",
    "AggregatingStateDescriptor",
    "BroadcastState",
    "ListState",
    "ListStateDescriptor",
    "MapState",
    "MapStateDescriptor",
    "ReadOnlyBroadcastState",
    "ReducingState",
    "ReducingStateDescriptor",
    "State",
    "StateDescriptor",
    "StateTtlConfig",
    "ValueState",
    "ValueStateDescriptor",
]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
IN = TypeVar("IN")
OUT = TypeVar("OUT")


class StateTtlConfig:
    """Time-to-live of keyed state, in processing time, as Flink defines it.

    A value expires ``ttl`` after its last write (``OnCreateAndWrite``, the default) or
    its last read or write (``OnReadAndWrite``). With ``NeverReturnExpired`` (the default)
    an expired value reads as absent; list and map state expire per element / entry.
    """

    class UpdateType(Enum):
        """Which accesses renew a value's time to live."""

        Disabled = 0
        OnCreateAndWrite = 1
        OnReadAndWrite = 2

    class StateVisibility(Enum):
        """Whether an expired value that is not yet cleaned up may be read."""

        ReturnExpiredIfNotCleanedUp = 0
        NeverReturnExpired = 1

    class TtlTimeCharacteristic(Enum):
        """The clock TTL is measured on; Flink supports processing time only."""

        ProcessingTime = 0

    def __init__(
        self,
        ttl_ms: int,
        update_type: StateTtlConfig.UpdateType,
        visibility: StateTtlConfig.StateVisibility,
    ) -> None:
        self.ttl_ms = ttl_ms
        self.update_type = update_type
        self.visibility = visibility

    def get_ttl(self) -> Duration:
        """The time to live."""
        return Duration(self.ttl_ms)

    def get_update_type(self) -> StateTtlConfig.UpdateType:
        """Which accesses renew the time to live."""
        return self.update_type

    def get_state_visibility(self) -> StateTtlConfig.StateVisibility:
        """Whether expired values may be returned."""
        return self.visibility

    def is_enabled(self) -> bool:
        """Whether TTL applies at all."""
        return self.update_type is not StateTtlConfig.UpdateType.Disabled

    @staticmethod
    def new_builder(ttl: Time | Duration) -> StateTtlConfig.Builder:
        """Start a TTL configuration with time to live ``ttl``."""
        return StateTtlConfig.Builder(ttl)

    class Builder:
        """Builds a :class:`StateTtlConfig`."""

        def __init__(self, ttl: Time | Duration) -> None:
            if not isinstance(ttl, (Time, Duration)):
                raise TypeError(f"ttl must be a Time or Duration, got {ttl!r}")
            if ttl.to_milliseconds() <= 0:
                raise ValueError(f"ttl must be positive, got {ttl.to_milliseconds()} ms")
            self._ttl_ms = ttl.to_milliseconds()
            self._update = StateTtlConfig.UpdateType.OnCreateAndWrite
            self._visibility = StateTtlConfig.StateVisibility.NeverReturnExpired

        def set_update_type(self, update_type: StateTtlConfig.UpdateType) -> StateTtlConfig.Builder:
            """Which accesses renew the time to live."""
            self._update = update_type
            return self

        def update_ttl_on_create_and_write(self) -> StateTtlConfig.Builder:
            """Writes renew the time to live."""
            return self.set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)

        def update_ttl_on_read_and_write(self) -> StateTtlConfig.Builder:
            """Reads and writes renew the time to live."""
            return self.set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)

        def set_state_visibility(
            self, visibility: StateTtlConfig.StateVisibility
        ) -> StateTtlConfig.Builder:
            """Whether expired values may be returned."""
            self._visibility = visibility
            return self

        def return_expired_if_not_cleaned_up(self) -> StateTtlConfig.Builder:
            """Expired values may be returned until cleaned up."""
            return self.set_state_visibility(
                StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp
            )

        def never_return_expired(self) -> StateTtlConfig.Builder:
            """Expired values are never returned."""
            return self.set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)

        def set_ttl(self, ttl: Time | Duration) -> StateTtlConfig.Builder:
            """Change the time to live."""
            self._ttl_ms = ttl.to_milliseconds()
            return self

        def set_ttl_time_characteristic(self, characteristic: Any) -> StateTtlConfig.Builder:
            """Only processing time is supported, as in Flink."""
            return self

        def cleanup_full_snapshot(self) -> StateTtlConfig.Builder:
            """Expired values are dropped from snapshots (always so here)."""
            return self

        def cleanup_incrementally(self, *args: Any) -> StateTtlConfig.Builder:
            """Expired values are dropped when read (always so here)."""
            return self

        def cleanup_in_rocksdb_compact_filter(self, *args: Any) -> StateTtlConfig.Builder:
            """Accepted for compatibility; expired values are dropped when read."""
            return self

        def disable_cleanup_in_background(self) -> StateTtlConfig.Builder:
            """Accepted for compatibility."""
            return self

        def build(self) -> StateTtlConfig:
            """The configuration."""
            return StateTtlConfig(self._ttl_ms, self._update, self._visibility)


class StateDescriptor:
    """Names a piece of state and its type; the name is unique per operator."""

    kind = "state"

    def __init__(self, name: str, type_info: TypeInformation | None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"state name must be a non-empty string, got {name!r}")
        if type_info is not None and not isinstance(type_info, TypeInformation):
            raise TypeError(f"type_info must be a TypeInformation, got {type_info!r}")
        self.name = name
        self.type_info = type_info if type_info is not None else Types.PICKLED_BYTE_ARRAY()
        self.ttl_config: StateTtlConfig | None = None

    def get_name(self) -> str:
        """The state's name."""
        return self.name

    def enable_time_to_live(self, ttl_config: StateTtlConfig) -> None:
        """Expire values of this state as ``ttl_config`` says."""
        if not isinstance(ttl_config, StateTtlConfig):
            raise TypeError(f"expected a StateTtlConfig, got {ttl_config!r}")
        self.ttl_config = ttl_config if ttl_config.is_enabled() else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ValueStateDescriptor(StateDescriptor):
    """Describes a :class:`ValueState`."""

    kind = "value"

    def __init__(self, name: str, value_type_info: TypeInformation | None = None) -> None:
        super().__init__(name, value_type_info)


class ListStateDescriptor(StateDescriptor):
    """Describes a :class:`ListState`."""

    kind = "list"

    def __init__(self, name: str, elem_type_info: TypeInformation | None = None) -> None:
        super().__init__(name, Types.LIST(elem_type_info) if elem_type_info else None)
        self.elem_type_info = elem_type_info


class MapStateDescriptor(StateDescriptor):
    """Describes a :class:`MapState`, and the broadcast state of a broadcast stream."""

    kind = "map"

    def __init__(
        self,
        name: str,
        key_type_info: TypeInformation | None = None,
        value_type_info: TypeInformation | None = None,
    ) -> None:
        key_type = key_type_info or Types.PICKLED_BYTE_ARRAY()
        value_type = value_type_info or Types.PICKLED_BYTE_ARRAY()
        super().__init__(name, Types.MAP(key_type, value_type))
        self.key_type_info = key_type
        self.value_type_info = value_type


class ReducingStateDescriptor(StateDescriptor):
    """Describes a :class:`ReducingState`; ``reduce_function`` combines two values into one."""

    kind = "reducing"

    def __init__(
        self, name: str, reduce_function: Any, type_info: TypeInformation | None = None
    ) -> None:
        super().__init__(name, type_info)
        reduce = getattr(reduce_function, "reduce", reduce_function)
        if not callable(reduce):
            raise TypeError(f"reduce_function must be a ReduceFunction or callable, got {reduce!r}")
        self.reduce_function = reduce


class AggregatingStateDescriptor(StateDescriptor):
    """Describes an :class:`AggregatingState` driven by an ``AggregateFunction``."""

    kind = "aggregating"

    def __init__(
        self, name: str, agg_function: Any, state_type_info: TypeInformation | None = None
    ) -> None:
        super().__init__(name, state_type_info)
        for method in ("create_accumulator", "add", "get_result"):
            if not callable(getattr(agg_function, method, None)):
                raise TypeError(
                    f"agg_function must be an AggregateFunction with {method}(), got "
                    f"{agg_function!r}"
                )
        self.agg_function = agg_function


class State(ABC):
    """A piece of keyed state, scoped to the current key."""

    @abstractmethod
    def clear(self) -> None:
        """Remove the current key's value."""


class ValueState(State, Generic[T]):
    """One value per key."""

    @abstractmethod
    def value(self) -> T | None:
        """The current key's value, or ``None`` when unset."""

    @abstractmethod
    def update(self, value: T | None) -> None:
        """Set the current key's value (``None`` clears it)."""


class ListState(State, Generic[T]):
    """A list of values per key."""

    @abstractmethod
    def get(self) -> Iterable[T]:
        """The current key's values (empty when unset)."""

    @abstractmethod
    def add(self, value: T) -> None:
        """Append a value."""

    @abstractmethod
    def add_all(self, values: list[T]) -> None:
        """Append values."""

    @abstractmethod
    def update(self, values: list[T]) -> None:
        """Replace the values."""

    def __iter__(self) -> Iterator[T]:
        return iter(self.get())


class MapState(State, Generic[K, V]):
    """A map per key."""

    @abstractmethod
    def get(self, key: K) -> V | None:
        """The value of ``key``, or ``None``."""

    @abstractmethod
    def put(self, key: K, value: V) -> None:
        """Set the value of ``key``."""

    @abstractmethod
    def put_all(self, dict_value: dict[K, V]) -> None:
        """Set several entries."""

    @abstractmethod
    def remove(self, key: K) -> None:
        """Remove ``key``."""

    @abstractmethod
    def contains(self, key: K) -> bool:
        """Whether ``key`` is present."""

    @abstractmethod
    def items(self) -> Iterable[tuple[K, V]]:
        """All entries."""

    def keys(self) -> Iterable[K]:
        """All keys."""
        return [k for k, _ in self.items()]

    def values(self) -> Iterable[V]:
        """All values."""
        return [v for _, v in self.items()]

    def is_empty(self) -> bool:
        """Whether the map has no entries."""
        return not any(True for _ in self.items())

    def __getitem__(self, key: K) -> V | None:
        return self.get(key)

    def __setitem__(self, key: K, value: V) -> None:
        self.put(key, value)

    def __delitem__(self, key: K) -> None:
        self.remove(key)

    def __contains__(self, key: K) -> bool:
        return self.contains(key)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())


class ReducingState(State, Generic[T]):
    """One value per key, combined with each added value by a reduce function."""

    @abstractmethod
    def get(self) -> T | None:
        """The reduced value, or ``None``."""

    @abstractmethod
    def add(self, value: T) -> None:
        """Reduce ``value`` into the state."""


class AggregatingState(State, Generic[IN, OUT]):
    """An accumulator per key, fed by ``add`` and read through ``get_result``."""

    @abstractmethod
    def get(self) -> OUT | None:
        """The aggregate's result, or ``None`` when nothing was added."""

    @abstractmethod
    def add(self, value: IN) -> None:
        """Add ``value`` to the accumulator."""


class ReadOnlyBroadcastState(ABC, Generic[K, V]):
    """Broadcast state as the non-broadcast side sees it: read only."""

    @abstractmethod
    def get(self, key: K) -> V | None:
        """The value of ``key``, or ``None``."""

    @abstractmethod
    def contains(self, key: K) -> bool:
        """Whether ``key`` is present."""

    @abstractmethod
    def items(self) -> Iterable[tuple[K, V]]:
        """All entries."""

    def keys(self) -> Iterable[K]:
        """All keys."""
        return [k for k, _ in self.items()]

    def values(self) -> Iterable[V]:
        """All values."""
        return [v for _, v in self.items()]

    def is_empty(self) -> bool:
        """Whether there are no entries."""
        return not any(True for _ in self.items())

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __contains__(self, key: K) -> bool:
        return self.contains(key)


class BroadcastState(ReadOnlyBroadcastState[K, V]):
    """Broadcast state as the broadcast side sees it: the same on every parallel instance."""

    @abstractmethod
    def put(self, key: K, value: V) -> None:
        """Set the value of ``key``."""

    @abstractmethod
    def put_all(self, dict_value: dict[K, V]) -> None:
        """Set several entries."""

    @abstractmethod
    def remove(self, key: K) -> None:
        """Remove ``key``."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every entry."""
