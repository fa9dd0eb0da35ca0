"""State backends selectable with ``env.set_state_backend``."""

from __future__ import annotations

from typing import Any

__all__ = ["EmbeddedRocksDBStateBackend", "HashMapStateBackend", "StateBackend"]


class StateBackend:
    """Base of the state backend choices."""

    kind = "memory"


class HashMapStateBackend(StateBackend):
    """Keyed state in memory (the default)."""

    kind = "memory"


class EmbeddedRocksDBStateBackend(StateBackend):
    """Keyed state on disk in RocksDB, for state larger than memory."""

    kind = "rocksdb"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass
