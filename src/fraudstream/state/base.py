"""The keyed state backend interface.

A backend holds the keyed state of one parallel instance of one keyed operator.
The operator sets :attr:`KeyedStateBackend.current_key` before it calls user code;
every state handle the backend gave out reads and writes that key's value only.

Snapshots are plain picklable data, organised by state name and key, so that a
restore can keep just the keys of the key groups the restoring instance owns
(rescaling) and can load into another backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from fraudstream.datastream.state import State, StateDescriptor
from fraudstream.state.files import StateFile

__all__ = ["KeyedStateBackend", "StateSnapshot"]

#: state name -> (descriptor kind, {key: stored value})
StateSnapshot = dict[str, tuple[str, dict[Any, Any]]]


class KeyedStateBackend(ABC):
    """Keyed state of one operator instance."""

    #: The key the state handles are scoped to; set by the operator per record and timer.
    current_key: Any = None

    @abstractmethod
    def get_state(self, descriptor: StateDescriptor) -> State:
        """The handle of the state ``descriptor`` names (created on first use)."""

    @abstractmethod
    def keys(self, state_name: str) -> Iterable[Any]:
        """The keys that have a value in the named state."""

    @abstractmethod
    def state_names(self) -> list[str]:
        """Names of all registered states."""

    @abstractmethod
    def snapshot(self) -> StateSnapshot | StateFile:
        """A consistent copy of all state, independent of later changes.

        In-memory backends return the data; on-disk backends may stream it to a
        :class:`~fraudstream.state.files.StateFile` and return its descriptor.
        """

    @abstractmethod
    def restore(self, snapshot: StateSnapshot | StateFile, keep: Callable[[Any], bool]) -> None:
        """Load ``snapshot``, keeping only keys for which ``keep(key)`` is true.

        Every backend loads both forms, so a checkpoint taken with one backend
        restores into the other.
        """

    @abstractmethod
    def clear_all(self) -> None:
        """Drop every key's state of every state name."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
