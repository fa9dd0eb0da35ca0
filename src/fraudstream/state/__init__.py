"""Keyed state backends: the interface in ``base``, implementations in sub-packages."""

from __future__ import annotations

from fraudstream.state.base import KeyedStateBackend, StateSnapshot
from fraudstream.state.files import StateFile
from fraudstream.state.memory import HeapKeyedStateBackend

__all__ = ["HeapKeyedStateBackend", "KeyedStateBackend", "StateFile", "StateSnapshot"]
