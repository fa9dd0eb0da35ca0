"""Keyed state in RocksDB (through ``rocksdict``): state larger than memory, on local disk."""

from __future__ import annotations

from fraudstream.state.rocksdb.backend import RocksDBKeyedStateBackend, opened_in_this_process

__all__ = ["RocksDBKeyedStateBackend", "opened_in_this_process"]
