"""State handles over a dict keyed by the backend's current key (no TTL: the fast path)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fraudstream.datastream.state import (
    AggregatingState,
    AggregatingStateDescriptor,
    ListState,
    MapState,
    ReducingState,
    ReducingStateDescriptor,
    StateDescriptor,
    ValueState,
)

if TYPE_CHECKING:
    from fraudstream.state.base import KeyedStateBackend


class HeapValueState(ValueState[Any]):
    """``table[current_key]``; ``None`` means unset."""

    __slots__ = ("_backend", "_table")

    def __init__(
        self, backend: KeyedStateBackend, table: dict[Any, Any], _: StateDescriptor
    ) -> None:
        self._backend = backend
        self._table = table

    def value(self) -> Any:
        """The current key's value, or ``None``."""
        return self._table.get(self._backend.current_key)

    def update(self, value: Any) -> None:
        """Set the current key's value; ``None`` clears it, as in Flink."""
        if value is None:
            self._table.pop(self._backend.current_key, None)
        else:
            self._table[self._backend.current_key] = value

    def clear(self) -> None:
        """Remove the current key's value."""
        self._table.pop(self._backend.current_key, None)


class HeapListState(ListState[Any]):
    """``table[current_key]`` is a list; an empty list is removed."""

    __slots__ = ("_backend", "_table")

    def __init__(
        self, backend: KeyedStateBackend, table: dict[Any, Any], _: StateDescriptor
    ) -> None:
        self._backend = backend
        self._table = table

    def get(self) -> Iterable[Any]:
        """The current key's values (an empty list when unset)."""
        values: list[Any] = self._table.get(self._backend.current_key, [])
        return values

    def add(self, value: Any) -> None:
        """Append ``value`` (``None`` is refused, as in Flink)."""
        if value is None:
            raise ValueError("cannot add None to a ListState")
        self._table.setdefault(self._backend.current_key, []).append(value)

    def add_all(self, values: list[Any]) -> None:
        """Append ``values``."""
        if any(v is None for v in values):
            raise ValueError("cannot add None to a ListState")
        if values:
            self._table.setdefault(self._backend.current_key, []).extend(values)

    def update(self, values: list[Any]) -> None:
        """Replace the current key's values."""
        if any(v is None for v in values):
            raise ValueError("cannot add None to a ListState")
        if values:
            self._table[self._backend.current_key] = list(values)
        else:
            self._table.pop(self._backend.current_key, None)

    def clear(self) -> None:
        """Remove the current key's values."""
        self._table.pop(self._backend.current_key, None)


class HeapMapState(MapState[Any, Any]):
    """``table[current_key]`` is a dict; an empty dict is removed."""

    __slots__ = ("_backend", "_table")

    def __init__(
        self, backend: KeyedStateBackend, table: dict[Any, Any], _: StateDescriptor
    ) -> None:
        self._backend = backend
        self._table = table

    def _map(self) -> dict[Any, Any]:
        return self._table.get(self._backend.current_key) or {}

    def get(self, key: Any) -> Any:
        """The value of ``key`` for the current key, or ``None``."""
        return self._map().get(key)

    def put(self, key: Any, value: Any) -> None:
        """Set ``key`` to ``value``."""
        self._table.setdefault(self._backend.current_key, {})[key] = value

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Set several entries."""
        if dict_value:
            self._table.setdefault(self._backend.current_key, {}).update(dict_value)

    def remove(self, key: Any) -> None:
        """Remove ``key``."""
        current = self._table.get(self._backend.current_key)
        if current is not None:
            current.pop(key, None)
            if not current:
                del self._table[self._backend.current_key]

    def contains(self, key: Any) -> bool:
        """Whether ``key`` is present."""
        return key in self._map()

    def items(self) -> Iterable[tuple[Any, Any]]:
        """A snapshot of the entries (safe to modify the state while iterating)."""
        return list(self._map().items())

    def keys(self) -> Iterable[Any]:
        """A snapshot of the keys."""
        return list(self._map())

    def values(self) -> Iterable[Any]:
        """A snapshot of the values."""
        return list(self._map().values())

    def is_empty(self) -> bool:
        """Whether the current key's map is empty."""
        return not self._map()

    def clear(self) -> None:
        """Remove the current key's map."""
        self._table.pop(self._backend.current_key, None)


class HeapReducingState(ReducingState[Any]):
    """``table[current_key]`` is the reduced value."""

    __slots__ = ("_backend", "_reduce", "_table")

    def __init__(
        self, backend: KeyedStateBackend, table: dict[Any, Any], descriptor: StateDescriptor
    ) -> None:
        assert isinstance(descriptor, ReducingStateDescriptor)
        self._backend = backend
        self._table = table
        self._reduce = descriptor.reduce_function

    def get(self) -> Any:
        """The reduced value, or ``None``."""
        return self._table.get(self._backend.current_key)

    def add(self, value: Any) -> None:
        """Reduce ``value`` into the current key's value."""
        key = self._backend.current_key
        current = self._table.get(key)
        self._table[key] = value if current is None else self._reduce(current, value)

    def clear(self) -> None:
        """Remove the current key's value."""
        self._table.pop(self._backend.current_key, None)


class HeapAggregatingState(AggregatingState[Any, Any]):
    """``table[current_key]`` is the accumulator."""

    __slots__ = ("_agg", "_backend", "_table")

    def __init__(
        self, backend: KeyedStateBackend, table: dict[Any, Any], descriptor: StateDescriptor
    ) -> None:
        assert isinstance(descriptor, AggregatingStateDescriptor)
        self._backend = backend
        self._table = table
        self._agg = descriptor.agg_function

    def get(self) -> Any:
        """The aggregate's result, or ``None`` when nothing was added."""
        key = self._backend.current_key
        if key not in self._table:
            return None
        return self._agg.get_result(self._table[key])

    def add(self, value: Any) -> None:
        """Add ``value`` to the current key's accumulator."""
        key = self._backend.current_key
        acc = self._table.get(key)
        if acc is None:
            acc = self._agg.create_accumulator()
        self._table[key] = self._agg.add(value, acc)

    def clear(self) -> None:
        """Remove the current key's accumulator."""
        self._table.pop(self._backend.current_key, None)
