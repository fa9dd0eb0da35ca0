"""Key groups: how keys are spread over parallel instances, as in Flink.

A key's *key group* is a stable hash of the key modulo the max parallelism (the number
of key groups); parallel instance ``i`` of ``p`` owns the contiguous key-group range
``[ceil(i*m/p), ceil((i+1)*m/p))``. The hash never uses Python's ``hash()``, which is
randomized per process, so a key lands on the same instance in every worker and after
every restart, and checkpoints can be redistributed to another parallelism.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_MAX_PARALLELISM",
    "assign_to_key_group",
    "key_group_range",
    "operator_index_for_key_group",
    "stable_hash",
]

DEFAULT_MAX_PARALLELISM = 128
_MASK64 = (1 << 64) - 1
_SEED = 0x9E3779B97F4A7C15
_SET_SEED = 0xC2B2AE3D27D4EB4F

#: Hashes of ints and strings seen lately. Only keys of exactly ``int`` or ``str`` go in
#: and are looked up, so ``True`` never meets ``1``'s entry (they hash differently).
_INTS: dict[int, int] = {}
_STRS: dict[str, int] = {}
_NAMES: dict[tuple[str, ...], tuple[int, tuple[str, ...]]] = {}
#: A tuple's running value after its first element, by that element's hash.
_FIRSTS: dict[int, int] = {}
_MEMO_LIMIT = 1 << 16
_T = TypeVar("_T")


def _mix64(value: int) -> int:
    """MurmurHash3's 64-bit finalizer: spreads nearby integers over all bits."""
    value &= _MASK64
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & _MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & _MASK64
    value ^= value >> 33
    return value


def _remember(memo: dict[Any, _T], key: Any, value: _T) -> _T:
    """Keep ``value`` for ``key`` in ``memo`` (emptied when full); return it."""
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _int_hash(value: int) -> int:
    return _remember(_INTS, value, _mix64(value))


def _str_hash(value: str) -> int:
    return _remember(_STRS, value, zlib.crc32(value.encode("utf-8", "surrogatepass")))


def stable_hash(key: Any) -> int:
    """A hash of ``key`` that is the same in every process and every run.

    An int is mixed (MurmurHash3's finalizer), a string or bytes CRC-32'd, a tuple
    folds its elements' hashes into a running value, mixing at each step, a frozenset
    the same in sorted order; ``None`` and booleans are 0 or 1, a float mixes its bits,
    anything else CRC-32s its pickle.
    Keys that route every record (a new key each time) spend most of their time here,
    so the common parts take short ways: memoized ints, strings, tuples of strings and
    first steps of tuples, and the mixing written out in the tuple loop.
    """
    kind = type(key)
    if kind is int:
        return _INTS.get(key) or _int_hash(key)
    if kind is str:
        return _STRS.get(key) or _str_hash(key)
    if kind is tuple:
        # A tuple of strings (field names, say) is memoized whole; an equal tuple whose
        # elements are not all exactly str (a str subclass) hashes otherwise, so it does
        # not take the memo's value. (The same tuple object needs no check.)
        try:
            known = _NAMES.get(key)
        except TypeError:  # an element Python cannot hash (a list): pickled below
            known = None
        if known is not None and (known[1] is key or all(type(e) is str for e in key)):
            return known[0]
        acc = _SEED
        names = True
        first = True
        for element in key:
            kind = type(element)
            if kind is str:
                part = _STRS.get(element) or _str_hash(element)
            else:
                names = False
                if kind is int:
                    part = _INTS.get(element) or _int_hash(element)
                else:
                    part = stable_hash(element)
            if first:  # the first step depends on the first element's hash alone
                first = False
                acc = _FIRSTS.get(part) or _remember(_FIRSTS, part, _mix64(_SEED ^ part))
                continue
            acc = (acc ^ part) & _MASK64
            acc ^= acc >> 33
            acc = (acc * 0xFF51AFD7ED558CCD) & _MASK64
            acc ^= acc >> 33
            acc = (acc * 0xC4CEB9FE1A85EC53) & _MASK64
            acc ^= acc >> 33
        if names:
            _remember(_NAMES, key, (acc, key))
        return acc
    if kind is bytes:
        return zlib.crc32(key)
    if kind is bool or key is None:
        return 0 if not key else 1
    if kind is float:
        return _mix64(struct.unpack("<q", struct.pack("<d", key))[0])
    if kind is frozenset:
        # Equal sets can iterate in different orders (the order follows insertion, and
        # strings hash differently in every process), so their pickles differ: fold the
        # elements' hashes in sorted order instead.
        acc = _SET_SEED
        for part in sorted(map(stable_hash, key)):
            acc = _mix64(acc ^ part)
        return acc
    return zlib.crc32(pickle.dumps(key, protocol=4))


def assign_to_key_group(key: Any, max_parallelism: int) -> int:
    """The key group of ``key``."""
    return stable_hash(key) % max_parallelism


def operator_index_for_key_group(key_group: int, max_parallelism: int, parallelism: int) -> int:
    """The parallel instance owning ``key_group``."""
    return key_group * parallelism // max_parallelism


def key_group_range(index: int, max_parallelism: int, parallelism: int) -> range:
    """The key groups owned by instance ``index`` of ``parallelism``."""
    start = (index * max_parallelism + parallelism - 1) // parallelism
    end = ((index + 1) * max_parallelism + parallelism - 1) // parallelism
    return range(start, end)
