"""State handles with time-to-live, as Flink defines it (processing time).

Each stored value carries the processing time of its last renewal; it expires once
``renewed_at + ttl <= now``. List and map state expire per element and per entry.
Expired values read as absent (``NeverReturnExpired``) or are returned once more
and then dropped (``ReturnExpiredIfNotCleanedUp``); they are dropped when read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fraudstream.datastream.state import (
    AggregatingState,
    AggregatingStateDescriptor,
    ListState,
    MapState,
    ReducingState,
    ReducingStateDescriptor,
    StateDescriptor,
    StateTtlConfig,
    ValueState,
)

if TYPE_CHECKING:
    from fraudstream.state.base import KeyedStateBackend

_RETURN_EXPIRED = StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp
_ON_READ = StateTtlConfig.UpdateType.OnReadAndWrite


class _Ttl:
    """Shared TTL bookkeeping of one state handle."""

    def __init__(
        self,
        backend: KeyedStateBackend,
        table: dict[Any, Any],
        config: StateTtlConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        self._backend = backend
        self._table = table
        self._ttl = config.ttl_ms
        self._return_expired = config.visibility is _RETURN_EXPIRED
        self._renew_on_read = config.update_type is _ON_READ
        self._clock = clock_ms

    def _expired(self, renewed_at: int, now: int) -> bool:
        return renewed_at + self._ttl <= now

    def clear(self) -> None:
        """Remove the current key's value."""
        self._table.pop(self._backend.current_key, None)


class TtlValueState(_Ttl, ValueState[Any]):
    """A value with a time to live; stored as ``(value, renewed_at)``."""

    def __init__(
        self,
        backend: KeyedStateBackend,
        table: dict[Any, Any],
        _: StateDescriptor,
        config: StateTtlConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        super().__init__(backend, table, config, clock_ms)

    def value(self) -> Any:
        """The current key's value unless it expired."""
        key = self._backend.current_key
        entry = self._table.get(key)
        if entry is None:
            return None
        now = self._clock()
        if self._expired(entry[1], now):
            del self._table[key]
            return entry[0] if self._return_expired else None
        if self._renew_on_read:
            self._table[key] = (entry[0], now)
        return entry[0]

    def update(self, value: Any) -> None:
        """Set the value and renew its time to live."""
        if value is None:
            self.clear()
        else:
            self._table[self._backend.current_key] = (value, self._clock())


class TtlListState(_Ttl, ListState[Any]):
    """A list whose elements expire one by one; stored as ``[(value, renewed_at), ...]``."""

    def __init__(
        self,
        backend: KeyedStateBackend,
        table: dict[Any, Any],
        _: StateDescriptor,
        config: StateTtlConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        super().__init__(backend, table, config, clock_ms)

    def get(self) -> Iterable[Any]:
        """The elements that have not expired."""
        key = self._backend.current_key
        entries = self._table.get(key)
        if not entries:
            return []
        now = self._clock()
        alive = [e for e in entries if not self._expired(e[1], now)]
        visible = entries if self._return_expired else alive
        if self._renew_on_read:
            alive = [(v, now) for v, _ in alive]
        if alive:
            self._table[key] = alive
        else:
            del self._table[key]
        return [v for v, _ in visible]

    def add(self, value: Any) -> None:
        """Append ``value``."""
        if value is None:
            raise ValueError("cannot add None to a ListState")
        self._table.setdefault(self._backend.current_key, []).append((value, self._clock()))

    def add_all(self, values: list[Any]) -> None:
        """Append ``values``."""
        for value in values:
            self.add(value)

    def update(self, values: list[Any]) -> None:
        """Replace the elements."""
        if any(v is None for v in values):
            raise ValueError("cannot add None to a ListState")
        now = self._clock()
        if values:
            self._table[self._backend.current_key] = [(v, now) for v in values]
        else:
            self.clear()


class TtlMapState(_Ttl, MapState[Any, Any]):
    """A map whose entries expire one by one; stored as ``{k: (value, renewed_at)}``."""

    def __init__(
        self,
        backend: KeyedStateBackend,
        table: dict[Any, Any],
        _: StateDescriptor,
        config: StateTtlConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        super().__init__(backend, table, config, clock_ms)

    def _live(self) -> dict[Any, Any]:
        key = self._backend.current_key
        entries = self._table.get(key)
        if not entries:
            return {}
        now = self._clock()
        for k in [k for k, e in entries.items() if self._expired(e[1], now)]:
            del entries[k]
        if not entries:
            del self._table[key]
        live: dict[Any, Any] = entries
        return live

    def get(self, key: Any) -> Any:
        """The value of ``key`` unless it expired."""
        entries = self._table.get(self._backend.current_key)
        if not entries or key not in entries:
            return None
        value, renewed_at = entries[key]
        now = self._clock()
        if self._expired(renewed_at, now):
            self.remove(key)
            return value if self._return_expired else None
        if self._renew_on_read:
            entries[key] = (value, now)
        return value

    def put(self, key: Any, value: Any) -> None:
        """Set ``key`` and renew its time to live."""
        self._table.setdefault(self._backend.current_key, {})[key] = (value, self._clock())

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Set several entries."""
        for k, v in dict_value.items():
            self.put(k, v)

    def remove(self, key: Any) -> None:
        """Remove ``key``."""
        entries = self._table.get(self._backend.current_key)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del self._table[self._backend.current_key]

    def contains(self, key: Any) -> bool:
        """Whether ``key`` is present and alive."""
        return key in self._live()

    def items(self) -> Iterable[tuple[Any, Any]]:
        """The live entries."""
        return [(k, e[0]) for k, e in list(self._live().items())]


class TtlReducingState(_Ttl, ReducingState[Any]):
    """A reduced value with a time to live."""

    def __init__(
        self,
        backend: KeyedStateBackend,
        table: dict[Any, Any],
        descriptor: StateDescriptor,
        config: StateTtlConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        super().__init__(backend, table, config, clock_ms)
        assert isinstance(descriptor, ReducingStateDescriptor)
        self._reduce = descriptor.reduce_function
        self._value = TtlValueState(backend, table, descriptor, config, clock_ms)

    def get(self) -> Any:
        """The reduced value unless it expired."""
        return self._value.value()

    def add(self, value: Any) -> None:
        """Reduce ``value`` into the state and renew its time to live."""
        current = self._value.value()
        self._value.update(value if current is None else self._reduce(current, value))


class TtlAggregatingState(_Ttl, AggregatingState[Any, Any]):
    """An accumulator with a time to live."""

    def __init__(
        self,
        backend: KeyedStateBackend,
        table: dict[Any, Any],
        descriptor: StateDescriptor,
        config: StateTtlConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        super().__init__(backend, table, config, clock_ms)
        assert isinstance(descriptor, AggregatingStateDescriptor)
        self._agg = descriptor.agg_function
        self._value = TtlValueState(backend, table, descriptor, config, clock_ms)

    def get(self) -> Any:
        """The aggregate's result unless the accumulator expired."""
        acc = self._value.value()
        return None if acc is None else self._agg.get_result(acc)

    def add(self, value: Any) -> None:
        """Add ``value`` to the accumulator and renew its time to live."""
        acc = self._value.value()
        if acc is None:
            acc = self._agg.create_accumulator()
        self._value.update(self._agg.add(value, acc))
