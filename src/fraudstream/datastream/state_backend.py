"""State backends selectable with ``env.set_state_backend``."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["EmbeddedRocksDBStateBackend", "HashMapStateBackend", "StateBackend"]


class StateBackend:
    """Base of the state backend choices."""

    kind = "memory"
    directory: str | None = None


class HashMapStateBackend(StateBackend):
    """Keyed state in memory (the default)."""

    kind = "memory"


class EmbeddedRocksDBStateBackend(StateBackend):
    """Keyed state on disk in RocksDB, for state larger than memory.

    Args:
        enable_incremental_checkpointing: accepted for compatibility; snapshots are full.
        db_storage_path: where the working databases go (default: the temporary directory).
    """

    kind = "rocksdb"

    def __init__(
        self,
        enable_incremental_checkpointing: bool | None = None,
        db_storage_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            import rocksdict  # noqa: F401
        except ImportError as exc:
            from fraudstream.exceptions import ConfigurationError

            raise ConfigurationError(
                "EmbeddedRocksDBStateBackend needs the rocksdict package: "
                "pip install 'fraudstream[rocksdb]'"
            ) from exc
        self.directory = None if db_storage_path is None else str(db_storage_path)

    def set_db_storage_path(self, path: str | os.PathLike[str]) -> None:
        """Where the working databases go."""
        self.directory = str(path)

    def get_db_storage_paths(self) -> list[str]:
        """The configured working directory (empty: the temporary directory)."""
        return [self.directory] if self.directory else []
