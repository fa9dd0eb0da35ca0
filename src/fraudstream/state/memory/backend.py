"""The in-memory keyed state backend: one dict per state name, keyed by the record key."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import Any

from fraudstream.datastream.state import State, StateDescriptor
from fraudstream.state.base import AnySnapshot, KeyedStateBackend, unpickled
from fraudstream.state.files import StateFile, read_state_file
from fraudstream.state.memory import states, ttl_states

__all__ = ["HeapKeyedStateBackend"]

_PLAIN: dict[str, Any] = {
    "value": states.HeapValueState,
    "list": states.HeapListState,
    "map": states.HeapMapState,
    "reducing": states.HeapReducingState,
    "aggregating": states.HeapAggregatingState,
}
_TTL: dict[str, Any] = {
    "value": ttl_states.TtlValueState,
    "list": ttl_states.TtlListState,
    "map": ttl_states.TtlMapState,
    "reducing": ttl_states.TtlReducingState,
    "aggregating": ttl_states.TtlAggregatingState,
}


class HeapKeyedStateBackend(KeyedStateBackend):
    """Keyed state in dicts. ``clock_ms`` is the processing-time clock TTL is measured on."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: 0) -> None:
        super().__init__()
        self.current_key: Any = None
        self._clock_ms = clock_ms
        self._tables: dict[str, dict[Any, Any]] = {}

    def _create_state(self, descriptor: StateDescriptor) -> State:
        table = self._tables.setdefault(descriptor.name, {})
        ttl = descriptor.ttl_config
        handle: State
        if ttl is None:
            handle = _PLAIN[descriptor.kind](self, table, descriptor)
        else:
            handle = _TTL[descriptor.kind](self, table, descriptor, ttl, self._clock_ms)
        return handle

    def _table_of(self, name: str) -> dict[Any, Any]:
        return self._tables[name]

    def keys(self, state_name: str) -> Iterable[Any]:
        """The keys that have a value in the named state."""
        return list(self._tables.get(state_name, ()))

    def state_names(self) -> list[str]:
        """Names of all registered or restored states."""
        return list(self._tables)

    def snapshot(self) -> AnySnapshot:
        """All tables pickled once: bytes no later change of a user object can reach.

        Pickled once and stored as they are: a copy made by a pickle round trip would be
        pickled again by the checkpoint (three passes over the state instead of one, and
        checkpoints of a large state are taken with the job paused).
        """
        kinds = {name: d.kind for name, d in self._descriptors.items()}
        data = {name: (kinds.get(name, "value"), table) for name, table in self._tables.items()}
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: AnySnapshot, keep: Callable[[Any], bool]) -> None:
        """Load the keys of ``snapshot`` that ``keep`` accepts, into the existing tables.

        ``snapshot`` may be a state file an on-disk backend wrote: its entries are
        read one at a time.
        """
        snapshot = unpickled(snapshot)
        if isinstance(snapshot, StateFile):
            tables = {
                number.to_bytes(2, "big"): self._tables.setdefault(name, {})
                for number, (name, _kind) in snapshot.states.items()
            }
            loads = pickle.loads
            for raw_key, raw_value in read_state_file(snapshot):
                key = loads(raw_key[4:])
                if keep(key):
                    tables[raw_key[:2]][key] = loads(raw_value)
            return
        for name, (_kind, table) in snapshot.items():
            target = self._tables.setdefault(name, {})
            for key, value in table.items():
                if keep(key):
                    target[key] = value

    def clear_all(self) -> None:
        """Drop every key's state."""
        for table in self._tables.values():
            table.clear()
