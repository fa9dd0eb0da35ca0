"""A dict-like view of one state's entries in RocksDB, keyed by the record key.

The in-memory state handles read and write ``table[key]``; this table gives them the
same operations over RocksDB, encoding the record key with its key group in front
(see :mod:`fraudstream.state.files` for the layout) and the value with pickle. A
value read from it is a fresh copy: handles that change lists or dicts in place
write them back (:mod:`fraudstream.state.rocksdb.states`).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["KeyEncoder", "RocksTable", "key_bytes"]

_MISSING = object()
_PROTOCOL = pickle.HIGHEST_PROTOCOL
#: Keys that pickle as one object, with no reference to anything written before.
_NUMBERS = frozenset({int, float, bool, type(None)})
_SINGLE = _NUMBERS | {str, bytes}
_FROZENSET = pickle.FROZENSET


class _SortedSet:
    """Pickles as ``frozenset(elements)``: a set's elements in a fixed order."""

    __slots__ = ("elements",)

    def __init__(self, elements: list[Any]) -> None:
        self.elements = elements

    def __reduce__(self) -> tuple[Any, ...]:
        return frozenset, (self.elements,)


class KeyEncoder:
    """Pickles record keys so that equal keys give equal bytes (:func:`key_bytes`).

    pickle refers back to an object it wrote before, by identity: ``(a, b)`` with
    ``a == b`` pickled otherwise when ``a is b``, and so did a key holding a string that
    is the very object pickle names a class with. The encoder pickles without those
    references (pickle's fast mode), and writes a frozenset inside plain tuples with its
    elements sorted by their bytes instead of in the order it iterates (which follows
    insertion and, for strings, the process). A key of one int, float, string or bytes,
    or a tuple of numbers, pickles as ``pickle.dumps`` does. One encoder per thread: it
    reuses its buffer.
    """

    __slots__ = ("_buffer", "_pickler")

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._pickler = pickle.Pickler(self._buffer, protocol=_PROTOCOL)
        self._pickler.fast = True

    def __call__(self, key: Any) -> bytes:
        """The row bytes of ``key``."""
        kind = type(key)
        if kind in _SINGLE:
            return pickle.dumps(key, protocol=_PROTOCOL)
        if kind is tuple:
            for element in key:
                if type(element) not in _NUMBERS:
                    break
            else:  # numbers alone: pickle refers back to none of them
                return pickle.dumps(key, protocol=_PROTOCOL)
        data = self._dump(key)
        if _FROZENSET in data:  # maybe a set (or only that byte): sort sets and redo
            data = self._dump(self._sorted_sets(key))
        return data

    def _sorted_sets(self, value: Any) -> Any:
        """``value`` with every frozenset inside plain tuples in a fixed order."""
        kind = type(value)
        if kind is tuple:
            return tuple([self._sorted_sets(element) for element in value])
        if kind is frozenset:
            return _SortedSet(sorted(map(self._sorted_sets, value), key=self._dump))
        return value

    def _dump(self, key: Any) -> bytes:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._pickler.dump(key)
        return buffer.getvalue()


def key_bytes(key: Any) -> bytes:
    """The row bytes of a record key, equal for equal keys (see :class:`KeyEncoder`).

    Named tuples and dataclasses are not looked into: a frozenset inside one still
    pickles in its iteration order.
    """
    return KeyEncoder()(key)


class RocksTable:
    """The entries of one named state of one backend."""

    __slots__ = ("_db", "_encode_key", "_key_group", "_last_encoded", "_last_key", "prefix")

    def __init__(self, db: Any, number: int, key_group: Callable[[Any], int]) -> None:
        self._db = db
        self.prefix = number.to_bytes(2, "big")
        self._key_group = key_group
        self._encode_key = KeyEncoder()
        self._last_key: Any = _MISSING
        self._last_encoded = b""

    def encode(self, key: Any) -> bytes:
        """The RocksDB key of ``key`` in this state (the last one is cached)."""
        if key is self._last_key:
            return self._last_encoded
        encoded = self.prefix + self._key_group(key).to_bytes(2, "big") + self._encode_key(key)
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
