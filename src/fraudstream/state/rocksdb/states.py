"""State handles over RocksDB: the in-memory handles, writing back what they change.

The in-memory list and map handles change the stored list or dict in place; over
RocksDB a read returns a copy, so these subclasses read, change and write it back.
The value, reducing and aggregating handles only ever replace whole values and work
over a :class:`~fraudstream.state.rocksdb.table.RocksTable` unchanged.
"""

from __future__ import annotations

from typing import Any

from fraudstream.state.memory import states, ttl_states

__all__ = ["PLAIN", "TTL"]


class RocksListState(states.HeapListState):
    """A list per key, stored whole."""

    def add(self, value: Any) -> None:
        """Append ``value`` (``None`` is refused, as in Flink)."""
        if value is None:
            raise ValueError("cannot add None to a ListState")
        key = self._backend.current_key
        current = self._table.get(key) or []
        current.append(value)
        self._table[key] = current

    def add_all(self, values: list[Any]) -> None:
        """Append ``values``."""
        if any(v is None for v in values):
            raise ValueError("cannot add None to a ListState")
        if values:
            key = self._backend.current_key
            self._table[key] = (self._table.get(key) or []) + list(values)


class RocksMapState(states.HeapMapState):
    """A dict per key, stored whole."""

    def put(self, key: Any, value: Any) -> None:
        """Set ``key`` to ``value``."""
        current = self._map()
        current[key] = value
        self._table[self._backend.current_key] = current

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Set several entries."""
        if dict_value:
            current = self._map()
            current.update(dict_value)
            self._table[self._backend.current_key] = current

    def remove(self, key: Any) -> None:
        """Remove ``key``."""
        current = self._table.get(self._backend.current_key)
        if current is not None and key in current:
            del current[key]
            if current:
                self._table[self._backend.current_key] = current
            else:
                del self._table[self._backend.current_key]


class RocksTtlListState(ttl_states.TtlListState):
    """A list with per-element time to live, stored whole."""

    def add(self, value: Any) -> None:
        """Append ``value``."""
        if value is None:
            raise ValueError("cannot add None to a ListState")
        key = self._backend.current_key
        current = self._table.get(key) or []
        current.append((value, self._clock()))
        self._table[key] = current


class RocksTtlMapState(ttl_states.TtlMapState):
    """A map with per-entry time to live, stored whole."""

    def _live(self) -> dict[Any, Any]:
        key = self._backend.current_key
        entries = self._table.get(key)
        if not entries:
            return {}
        now = self._clock()
        expired = [k for k, e in entries.items() if self._expired(e[1], now)]
        if expired:
            for k in expired:
                del entries[k]
            if entries:
                self._table[key] = entries
            else:
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
            self._table[self._backend.current_key] = entries
        return value

    def put(self, key: Any, value: Any) -> None:
        """Set ``key`` and renew its time to live."""
        current = self._table.get(self._backend.current_key) or {}
        current[key] = (value, self._clock())
        self._table[self._backend.current_key] = current

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Set several entries."""
        if dict_value:
            current = self._table.get(self._backend.current_key) or {}
            now = self._clock()
            for k, v in dict_value.items():
                current[k] = (v, now)
            self._table[self._backend.current_key] = current

    def remove(self, key: Any) -> None:
        """Remove ``key``."""
        current = self._table.get(self._backend.current_key)
        if current is not None and key in current:
            del current[key]
            if current:
                self._table[self._backend.current_key] = current
            else:
                del self._table[self._backend.current_key]


PLAIN: dict[str, Any] = {
    "value": states.HeapValueState,
    "list": RocksListState,
    "map": RocksMapState,
    "reducing": states.HeapReducingState,
    "aggregating": states.HeapAggregatingState,
}
TTL: dict[str, Any] = {
    "value": ttl_states.TtlValueState,
    "list": RocksTtlListState,
    "map": RocksTtlMapState,
    "reducing": ttl_states.TtlReducingState,
    "aggregating": ttl_states.TtlAggregatingState,
}
