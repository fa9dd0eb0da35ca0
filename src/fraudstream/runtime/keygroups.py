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
from typing import Any

__all__ = [
    "DEFAULT_MAX_PARALLELISM",
    "assign_to_key_group",
    "key_group_range",
    "operator_index_for_key_group",
    "stable_hash",
]

DEFAULT_MAX_PARALLELISM = 128
_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    """MurmurHash3's 64-bit finalizer: spreads nearby integers over all bits."""
    value &= _MASK64
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & _MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & _MASK64
    value ^= value >> 33
    return value


def stable_hash(key: Any) -> int:
    """A hash of ``key`` that is the same in every process and every run."""
    kind = type(key)
    if kind is int:
        return _mix64(key)
    if kind is str:
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if kind is tuple:
        acc = 0x9E3779B97F4A7C15
        for element in key:
            acc = _mix64(acc ^ stable_hash(element))
        return acc
    if kind is bytes:
        return zlib.crc32(key)
    if kind is bool or key is None:
        return 0 if not key else 1
    if kind is float:
        return _mix64(struct.unpack("<q", struct.pack("<d", key))[0])
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
