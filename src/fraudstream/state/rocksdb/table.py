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

__all__ = ["RocksTable", "key_bytes"]

_MISSING = object()
_PROTOCOL = pickle.HIGHEST_PROTOCOL
#: Types that pickle without a reference to an earlier copy of themselves.
_ATOMS = frozenset({int, float, bool, type(None)})


class _SortedSet:
    """Pickles as ``frozenset(elements)``: a set's elements in a fixed order."""

    __slots__ = ("elements",)

    def __init__(self, elements: list[Any]) -> None:
        self.elements = elements

    def __reduce__(self) -> tuple[Any, ...]:
        return frozenset, (self.elements,)


def _canonical(value: tuple[Any, ...] | frozenset[Any], shared: dict[Any, Any]) -> Any:
    """``value`` with equal strings (and bytes) as one object, fresh tuples, sorted sets.

    ``shared`` holds exact ``str`` and ``bytes`` only, which no other type equals.
    """
    parts: list[Any] = []
    append = parts.append
    for element in value:
        kind = type(element)
        if kind is str or kind is bytes:
            append(shared.setdefault(element, element))
        elif kind is tuple or kind is frozenset:
            append(_canonical(element, shared))
        else:
            append(element)
    if type(value) is frozenset:
        parts.sort(key=_own_bytes)
        return _SortedSet(parts)
    return tuple(parts)


def _own_bytes(part: Any) -> bytes:
    return pickle.dumps(part, protocol=_PROTOCOL)


def key_bytes(key: Any) -> bytes:
    """The pickle of a record key, the same for every key equal to it.

    pickle writes a string or tuple that occurs twice in a key once and then refers to
    it, so ``(a, b)`` with ``a == b`` pickles otherwise when ``a is b``; and a frozenset
    in the order it iterates, which follows insertion and, for strings, the process.
    Inside plain tuples and frozensets, equal strings are therefore made one object,
    tuples fresh ones, and set elements sorted by their own bytes. A key with no such
    repetition and no frozenset pickles exactly as before. Other objects (named tuples,
    dataclasses) pickle as they are.
    """
    kind = type(key)
    if kind is tuple:
        for element in key:
            if type(element) not in _ATOMS:  # numbers alone need nothing
                key = _canonical(key, {})
                break
    elif kind is frozenset:
        key = _canonical(key, {})
    return pickle.dumps(key, protocol=_PROTOCOL)


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
        encoded = self.prefix + self._key_group(key).to_bytes(2, "big") + key_bytes(key)
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
