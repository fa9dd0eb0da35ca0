"""Keyed state written to a file beside a checkpoint, entry by entry.

On-disk backends cannot hand a checkpoint their whole state as one in-memory dict:
state larger than memory would have to fit in memory at once. They stream it into a
*state file* instead, one ``(key, value)`` entry at a time, and put a small
:class:`StateFile` descriptor into the checkpoint in place of the data.

An entry's key is ``state number (2 bytes) | key group (2 bytes) | pickled key``; the
key group comes first after the state number so that a restore keeps the key groups
it owns by reading two bytes, without unpickling anything. The value is the pickled
stored value, in the same shape the in-memory backend keeps (so either backend loads
the other's snapshots).

Format 2 (``FSKV2``) pickles keys canonically (``state.rocksdb.table.KeyEncoder``) and
hashes frozenset keys by their elements; a restore re-encodes the entries of a
format-1 file one by one.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from fraudstream.exceptions import CheckpointError

__all__ = ["StateFile", "read_state_file", "state_file_format", "write_state_file"]

_LENGTHS = struct.Struct(">II")
_MAGIC = b"FSKV2\n"
_FORMATS = {b"FSKV1\n": 1, _MAGIC: 2}


@dataclass(frozen=True)
class StateFile:
    """A keyed-state snapshot kept in a file (the descriptor travels in the checkpoint).

    Attributes:
        name: the file name; relative to the checkpoint directory once published.
        sha256: checksum of the file's bytes.
        size: length of the file in bytes.
        states: state number -> ``(state name, descriptor kind)``.
        path: where the file is now (set while writing and when restoring).
    """

    name: str
    sha256: str
    size: int
    states: dict[int, tuple[str, str]]
    path: str | None = None

    def located_in(self, directory: str | os.PathLike[str]) -> StateFile:
        """This descriptor with ``path`` pointing into ``directory``."""
        return replace(self, path=str(Path(directory) / self.name))


def write_state_file(
    path: Path, states: dict[int, tuple[str, str]], entries: Iterable[tuple[bytes, bytes]]
) -> StateFile:
    """Stream ``entries`` into ``path``; the descriptor with checksum and size."""
    digest = hashlib.sha256()
    size = 0
    pack = _LENGTHS.pack
    with open(path, "wb", buffering=1 << 20) as handle:
        chunks: list[bytes] = [_MAGIC]
        pending = len(_MAGIC)
        for key, value in entries:
            chunks.append(pack(len(key), len(value)))
            chunks.append(key)
            chunks.append(value)
            pending += 8 + len(key) + len(value)
            if pending >= 1 << 20:
                data = b"".join(chunks)
                digest.update(data)
                handle.write(data)
                size += len(data)
                chunks, pending = [], 0
        data = b"".join(chunks)
        digest.update(data)
        handle.write(data)
        size += len(data)
        handle.flush()
        os.fsync(handle.fileno())
    return StateFile(path.name, digest.hexdigest(), size, dict(states), str(path))


def state_file_format(state_file: StateFile) -> int:
    """The format of a state file (1 or 2, see the module's docstring)."""
    if state_file.path is None:
        raise CheckpointError(f"state file {state_file.name!r} has no location")
    with open(state_file.path, "rb") as handle:
        magic = handle.read(len(_MAGIC))
    if magic not in _FORMATS:
        raise CheckpointError(f"state file {state_file.path!r} is not a keyed state file")
    return _FORMATS[magic]


def read_state_file(state_file: StateFile) -> Iterator[tuple[bytes, bytes]]:
    """The entries of a state file, in order (read in chunks, never all at once)."""
    if state_file.path is None:
        raise CheckpointError(f"state file {state_file.name!r} has no location")
    unpack = _LENGTHS.unpack
    with open(state_file.path, "rb", buffering=1 << 20) as handle:
        if handle.read(len(_MAGIC)) not in _FORMATS:
            raise CheckpointError(f"state file {state_file.path!r} is not a keyed state file")
        while True:
            header = handle.read(8)
            if not header:
                return
            if len(header) != 8:
                raise CheckpointError(f"state file {state_file.path!r} is truncated")
            key_length, value_length = unpack(header)
            key = handle.read(key_length)
            value = handle.read(value_length)
            if len(key) != key_length or len(value) != value_length:
                raise CheckpointError(f"state file {state_file.path!r} is truncated")
            yield key, value
