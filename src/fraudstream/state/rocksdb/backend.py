"""The RocksDB keyed state backend: state on local disk, for state larger than memory.

Each operator instance opens its own RocksDB database in a working directory (deleted
on close). Every state name gets a two-byte number; an entry's RocksDB key is that
number, the key group of the record key and the pickled record key, so that

- one state's entries are one key range (``keys(name)`` and ``clear`` are range ops),
- a snapshot streams every entry to a :class:`~fraudstream.state.files.StateFile`
  from a RocksDB snapshot, never holding the state in memory at once,
- a restore keeps the key groups this instance owns by reading two bytes per entry.

The write-ahead log is off: durability comes from checkpoints, as in Flink.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fraudstream.datastream.state import State, StateDescriptor
from fraudstream.exceptions import ConfigurationError
from fraudstream.runtime.keygroups import assign_to_key_group
from fraudstream.state.base import AnySnapshot, KeyedStateBackend, StateSnapshot, unpickled
from fraudstream.state.files import (
    StateFile,
    read_state_file,
    state_file_format,
    write_state_file,
)
from fraudstream.state.rocksdb.states import PLAIN, TTL
from fraudstream.state.rocksdb.table import KeyEncoder, RocksTable

__all__ = ["RocksDBKeyedStateBackend", "opened_in_this_process"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_opened_by: set[int] = set()


def opened_in_this_process() -> bool:
    """Whether this process has opened a RocksDB database (then it must not fork workers)."""
    return os.getpid() in _opened_by


def _open_db(path: Path) -> Any:
    try:
        from rocksdict import Options, Rdict, WriteOptions
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "the RocksDB state backend needs the rocksdict package: "
            "pip install 'fraudstream[rocksdb]'"
        ) from exc
    _opened_by.add(os.getpid())
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(path), options)
    write_options = WriteOptions()
    # The stubs declare a method; the binding exposes a property.
    setattr(write_options, "disable_wal", True)  # noqa: B010
    db.set_write_options(write_options)
    return db


class RocksDBKeyedStateBackend(KeyedStateBackend):
    """Keyed state of one operator instance in an embedded RocksDB database.

    Args:
        directory: where the working database goes (a fresh sub-directory is made);
            the system's temporary directory when ``None``.
        max_parallelism: the number of key groups.
        key_groups: the key groups this instance owns (restores keep only those).
        clock_ms: the processing-time clock TTL is measured on.
        snapshot_dir: where snapshots are written; ``None`` snapshots to memory.
    """

    def __init__(
        self,
        directory: str | None = None,
        max_parallelism: int = 128,
        key_groups: range | None = None,
        clock_ms: Callable[[], int] = lambda: 0,
        snapshot_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.current_key: Any = None
        base = Path(directory) if directory else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="fraudstream-rocksdb-", dir=base))
        self._db = _open_db(self.path / "db")
        self._max_parallelism = max_parallelism
        self._key_groups = key_groups if key_groups is not None else range(max_parallelism)
        self._clock_ms = clock_ms
        self.snapshot_dir = snapshot_dir
        self._tables: dict[str, RocksTable] = {}
        self._kinds: dict[str, str] = {}

    def _key_group(self, key: Any) -> int:
        return assign_to_key_group(key, self._max_parallelism)

    def _table(self, name: str, kind: str) -> RocksTable:
        table = self._tables.get(name)
        if table is None:
            table = RocksTable(self._db, len(self._tables), self._key_group)
            self._tables[name] = table
            self._kinds[name] = kind
        return table

    def _create_state(self, descriptor: StateDescriptor) -> State:
        table = self._table(descriptor.name, descriptor.kind)
        self._kinds[descriptor.name] = descriptor.kind
        ttl = descriptor.ttl_config
        handle: State
        if ttl is None:
            handle = PLAIN[descriptor.kind](self, table, descriptor)
        else:
            handle = TTL[descriptor.kind](self, table, descriptor, ttl, self._clock_ms)
        return handle

    def _table_of(self, name: str) -> RocksTable:
        return self._tables[name]

    def keys(self, state_name: str) -> Iterable[Any]:
        """The keys that have a value in the named state."""
        table = self._tables.get(state_name)
        return list(table) if table is not None else []

    def state_names(self) -> list[str]:
        """Names of all registered or restored states."""
        return list(self._tables)

    def _numbers(self) -> dict[int, tuple[str, str]]:
        return {
            int.from_bytes(t.prefix, "big"): (name, self._kinds[name])
            for name, t in self._tables.items()
        }

    def _entries(self, snapshot: Any) -> Iterator[tuple[bytes, bytes]]:
        iterator = snapshot.iter()
        iterator.seek_to_first()
        while iterator.valid():
            yield iterator.key(), iterator.value()
            iterator.next()

    def snapshot(self) -> StateSnapshot | StateFile:
        """Stream every entry to a state file (or, without a snapshot dir, to a dict)."""
        view = self._db.snapshot()
        if self.snapshot_dir is None:
            numbers = self._numbers()
            data: StateSnapshot = {name: (kind, {}) for name, kind in numbers.values()}
            for key, value in self._entries(view):
                name, _kind = numbers[int.from_bytes(key[:2], "big")]
                data[name][1][pickle.loads(key[4:])] = pickle.loads(value)
            return data
        directory = Path(self.snapshot_dir)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"keyed-{uuid.uuid4().hex}.kv"
        return write_state_file(target, self._numbers(), self._entries(view))

    def restore(self, snapshot: AnySnapshot, keep: Callable[[Any], bool]) -> None:
        """Load the entries of ``snapshot`` that belong to this instance's key groups."""
        snapshot = unpickled(snapshot)
        if isinstance(snapshot, StateFile):
            self._restore_file(snapshot)
            return
        for name, (kind, entries) in snapshot.items():
            table = self._table(name, kind)
            for key, value in entries.items():
                if keep(key):
                    table[key] = value

    def _restore_file(self, snapshot: StateFile) -> None:
        owned = self._key_groups
        renumber: dict[bytes, bytes] = {}
        for number, (name, kind) in snapshot.states.items():
            renumber[number.to_bytes(2, "big")] = self._table(name, kind).prefix
        put = self._db.put
        if state_file_format(snapshot) == 1:
            # Written before keys were pickled canonically and frozensets hashed by their
            # elements: the row and the key group of such keys may differ now.
            encode = KeyEncoder()
            for key, value in read_state_file(snapshot):
                record_key = pickle.loads(key[4:])
                group = self._key_group(record_key)
                if group in owned:
                    row = group.to_bytes(2, "big") + encode(record_key)
                    put(renumber[key[:2]] + row, value)
            return
        for key, value in read_state_file(snapshot):
            if int.from_bytes(key[2:4], "big") in owned:
                put(renumber[key[:2]] + key[2:], value)

    def clear_all(self) -> None:
        """Drop every key's state."""
        for table in self._tables.values():
            table.clear()

    def close(self) -> None:
        """Close the database and delete its working directory."""
        db, self._db = self._db, None
        if db is not None:
            db.close()
            shutil.rmtree(self.path, ignore_errors=True)
