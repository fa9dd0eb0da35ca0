"""A dict-like view of one state's entries in RocksDB, keyed by the record key.

The in-memory state handles read and write ``table[key]``; this table gives them the
same operations over RocksDB, encoding the record key with its key group in front
(see :mod:`fraudstream.state.files` for the layout) and the value with pickle. A
value read from it is a fresh copy: handles that change lists or dicts in place
write them back (:mod:`fraudstream.state.rocksdb.states`).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["RocksTable"]

_MISSING = object()
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class RocksTable:
    """The entries of one named state of one backend."""

    __slots__ = ("_db", "_key_group", "_last_encoded", "_last_key", "prefix")

    def __init__(self, db: Any, number: int, key_group: Callable[[Any], int]) -> None:
        self._db = db
        self.prefix = number.to_bytes(2, "big")
        self._key_group = key_group
        self._last_key: Any = _MISSING
        self._last_encoded = b""

    def encode(self, key: Any) -> bytes:
        """The RocksDB key of ``key`` in this state (the last one is cached)."""
        if key is self._last_key:
            return self._last_encoded
        encoded = (
            self.prefix
            + self._key_group(key).to_bytes(2, "big")
            + pickle.dumps(key, protocol=_PROTOCOL)
        )
        self._last_key = key
        self._last_encoded = encoded
        return encoded

    def get(self, key: Any, default: Any = None) -> Any:
        """The stored value of ``key`` or ``default``."""
        raw = self._db.get(self.encode(key))
        return default if raw is None else pickle.loads(raw)

    def __getitem__(self, key: Any) -> Any:
        raw = self._db.get(self.encode(key))
        if raw is None:
            raise KeyError(key)
        return pickle.loads(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._db.put(self.encode(key), pickle.dumps(value, protocol=_PROTOCOL))

    def __delitem__(self, key: Any) -> None:
        self._db.delete(self.encode(key))

    def __contains__(self, key: Any) -> bool:
        return self._db.get(self.encode(key)) is not None

    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove ``key``; its value or ``default``."""
        encoded = self.encode(key)
        raw = self._db.get(encoded)
        if raw is None:
            return default
        self._db.delete(encoded)
        return pickle.loads(raw)

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(encoded key, encoded value)`` of this state, in key order."""
        iterator = self._db.iter()
        prefix = self.prefix
        iterator.seek(prefix)
        while iterator.valid():
            key = iterator.key()
            if not key.startswith(prefix):
                break
            yield key, iterator.value()
            iterator.next()

    def __iter__(self) -> Iterator[Any]:
        for key, _ in self.raw_items():
            yield pickle.loads(key[4:])

    def clear(self) -> None:
        """Remove every entry of this state."""
        number = int.from_bytes(self.prefix, "big")
        self._db.delete_range(self.prefix, (number + 1).to_bytes(2, "big"))
        self._last_key = _MISSING
