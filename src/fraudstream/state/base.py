"""The keyed state backend interface.

A backend holds the keyed state of one parallel instance of one keyed operator.
The operator sets :attr:`KeyedStateBackend.current_key` before it calls user code;
every state handle the backend gave out reads and writes that key's value only.

Snapshots are plain picklable data, organised by state name and key, so that a
restore can keep just the keys of the key groups the restoring instance owns
(rescaling) and can load into another backend.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from fraudstream.datastream.state import State, StateDescriptor
from fraudstream.exceptions import ConfigurationError
from fraudstream.state.files import StateFile

__all__ = ["AnySnapshot", "KeyedStateBackend", "StateSnapshot", "unpickled"]

#: state name -> (descriptor kind, {key: stored value})
StateSnapshot = dict[str, tuple[str, dict[Any, Any]]]
#: What a backend's ``snapshot`` returns: the tables, a state file an on-disk backend
#: wrote, or the tables pickled once (the heap backend: immutable bytes, independent of
#: later changes, that the checkpoint stores as they are instead of pickling a copy again).
AnySnapshot = StateSnapshot | StateFile | bytes


def unpickled(snapshot: AnySnapshot) -> StateSnapshot | StateFile:
    """``snapshot`` with pickled tables loaded (every backend restores every form)."""
    if isinstance(snapshot, bytes):
        tables: StateSnapshot = pickle.loads(snapshot)
        return tables
    return snapshot


class KeyedStateBackend(ABC):
    """Keyed state of one operator instance."""

    #: The key the state handles are scoped to; set by the operator per record and timer.
    current_key: Any = None

    def __init__(self) -> None:
        self._descriptors: dict[str, StateDescriptor] = {}
        self._handles: dict[str, State] = {}

    def get_state(self, descriptor: StateDescriptor) -> State:
        """The handle of the state ``descriptor`` names (created on first use).

        A name is bound to one kind of state: asking for it again as another kind fails.
        """
        name = descriptor.name
        known = self._descriptors.get(name)
        if known is not None:
            if known.kind != descriptor.kind:
                raise ConfigurationError(
                    f"state {name!r} is already registered as {known.kind} state; "
                    f"cannot get it again as {descriptor.kind} state"
                )
            return self._handles[name]
        handle = self._create_state(descriptor)
        self._descriptors[name] = descriptor
        self._handles[name] = handle
        return handle

    def value_table(self, descriptor: StateDescriptor) -> Any:
        """The stored values of a ``ValueState`` without TTL, as a mapping by key.

        For batch functions (a fraudstream extension): they read and write many keys'
        values per call without setting :attr:`current_key` for each. The mapping has
        ``get(key)``, ``table[key] = value``, ``pop(key, None)`` and iteration over
        keys. A value read must be written back after changing it (on-disk backends
        hand out copies), except from a ``dict`` (the memory backend's own table, which
        holds the stored objects themselves).
        """
        if descriptor.kind != "value" or descriptor.ttl_config is not None:
            raise ConfigurationError(
                f"value_table needs a ValueStateDescriptor without TTL, got {descriptor!r}"
            )
        self.get_state(descriptor)
        return self._table_of(descriptor.name)

    def _table_of(self, name: str) -> Any:
        """The mapping behind the named state (see :meth:`value_table`)."""
        raise ConfigurationError(f"{type(self).__name__} does not offer value tables")

    @abstractmethod
    def _create_state(self, descriptor: StateDescriptor) -> State:
        """A new handle for a state name asked for the first time."""

    @abstractmethod
    def keys(self, state_name: str) -> Iterable[Any]:
        """The keys that have a value in the named state."""

    @abstractmethod
    def state_names(self) -> list[str]:
        """Names of all registered states."""

    @abstractmethod
    def snapshot(self) -> AnySnapshot:
        """A consistent copy of all state, independent of later changes.

        In-memory backends return the data (pickled once); on-disk backends may stream it
        to a :class:`~fraudstream.state.files.StateFile` and return its descriptor.
        """

    @abstractmethod
    def restore(self, snapshot: AnySnapshot, keep: Callable[[Any], bool]) -> None:
        """Load ``snapshot``, keeping only keys for which ``keep(key)`` is true.

        Every backend loads both forms, so a checkpoint taken with one backend
        restores into the other.
        """

    @abstractmethod
    def clear_all(self) -> None:
        """Drop every key's state of every state name."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
