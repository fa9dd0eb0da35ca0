"""Keyed state in Python dicts: the default backend, fastest while state fits in memory."""

from __future__ import annotations

from fraudstream.state.memory.backend import HeapKeyedStateBackend

__all__ = ["HeapKeyedStateBackend"]
