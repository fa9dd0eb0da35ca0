"""Both keyed state backends behave alike, snapshot alike and load each other's snapshots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudstream.common import Time
from fraudstream.datastream import (
    ListStateDescriptor,
    MapStateDescriptor,
    StateTtlConfig,
    ValueStateDescriptor,
)
from fraudstream.exceptions import CheckpointError
from fraudstream.runtime.keygroups import assign_to_key_group, key_group_range
from fraudstream.state import HeapKeyedStateBackend, KeyedStateBackend, StateFile
from fraudstream.state.rocksdb import RocksDBKeyedStateBackend

Factory = Callable[..., KeyedStateBackend]


def memory(clock: Callable[[], int] = lambda: 0, **_: Any) -> KeyedStateBackend:
    return HeapKeyedStateBackend(clock)


@pytest.fixture(params=["memory", "rocksdb"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    made: list[KeyedStateBackend] = []

    def factory(clock: Callable[[], int] = lambda: 0, **kwargs: Any) -> KeyedStateBackend:
        if request.param == "memory":
            backend = memory(clock)
        else:
            kwargs.setdefault("directory", str(tmp_path / "work"))
            backend = RocksDBKeyedStateBackend(clock_ms=clock, **kwargs)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        backend.close()


def fill(backend: KeyedStateBackend, keys: range) -> None:
    value = backend.get_state(ValueStateDescriptor("v"))
    items = backend.get_state(ListStateDescriptor("l"))
    mapping = backend.get_state(MapStateDescriptor("m"))
    for key in keys:
        backend.current_key = key
        value.update(key * 10)  # type: ignore[attr-defined]
        items.add(key)  # type: ignore[attr-defined]
        items.add(key + 1)  # type: ignore[attr-defined]
        mapping.put("k", key)  # type: ignore[attr-defined]


def read(backend: KeyedStateBackend, key: Any) -> tuple[Any, Any, Any]:
    backend.current_key = key
    value = backend.get_state(ValueStateDescriptor("v")).value()  # type: ignore[attr-defined]
    items = list(backend.get_state(ListStateDescriptor("l")).get())  # type: ignore[attr-defined]
    mapping = dict(backend.get_state(MapStateDescriptor("m")).items())  # type: ignore[attr-defined]
    return value, items, mapping


def test_state_is_scoped_to_the_current_key(make: Factory) -> None:
    backend = make()
    fill(backend, range(5))
    assert read(backend, 3) == (30, [3, 4], {"k": 3})
    assert read(backend, 99) == (None, [], {})
    assert sorted(backend.keys("v")) == [0, 1, 2, 3, 4]
    backend.current_key = 2
    backend.get_state(MapStateDescriptor("m")).remove("k")  # type: ignore[attr-defined]
    backend.get_state(ListStateDescriptor("l")).update([])  # type: ignore[attr-defined]
    assert read(backend, 2) == (20, [], {})
    assert sorted(backend.keys("m")) == [0, 1, 3, 4]
    backend.clear_all()
    assert list(backend.keys("v")) == []


@pytest.mark.parametrize("target", ["memory", "rocksdb"])
def test_snapshots_restore_into_either_backend_keeping_owned_key_groups(
    make: Factory, target: str, tmp_path: Path
) -> None:
    source = make(snapshot_dir=str(tmp_path / "staging"), max_parallelism=16)
    fill(source, range(200))
    snapshot = source.snapshot()
    fill(source, range(200, 210))  # later changes are not in the snapshot
    owned = key_group_range(1, 16, 2)

    def keep(key: Any) -> bool:
        return assign_to_key_group(key, 16) in owned

    restored: KeyedStateBackend
    if target == "memory":
        restored = memory()
    else:
        restored = RocksDBKeyedStateBackend(
            directory=str(tmp_path / "r"), max_parallelism=16, key_groups=owned
        )
    try:
        restored.restore(snapshot, keep)
        expected = [k for k in range(200) if keep(k)]
        assert sorted(restored.keys("v")) == expected
        assert 0 < len(expected) < 200
        for key in expected[:20]:
            assert read(restored, key) == (key * 10, [key, key + 1], {"k": key})
    finally:
        restored.close()


def test_rocksdb_streams_snapshots_to_a_checksummed_file(tmp_path: Path) -> None:
    backend = RocksDBKeyedStateBackend(
        directory=str(tmp_path / "work"), snapshot_dir=str(tmp_path / "staging")
    )
    try:
        fill(backend, range(1000))
        snapshot = backend.snapshot()
        assert isinstance(snapshot, StateFile)
        assert snapshot.path is not None and Path(snapshot.path).stat().st_size == snapshot.size
        assert {name for name, _ in snapshot.states.values()} == {"v", "l", "m"}
    finally:
        backend.close()
    assert not (backend.path).exists()  # the working database is removed on close


def test_a_truncated_state_file_is_refused(tmp_path: Path) -> None:
    backend = RocksDBKeyedStateBackend(
        directory=str(tmp_path / "work"), snapshot_dir=str(tmp_path / "staging")
    )
    try:
        fill(backend, range(100))
        snapshot = backend.snapshot()
        assert isinstance(snapshot, StateFile) and snapshot.path is not None
        data = Path(snapshot.path).read_bytes()
        Path(snapshot.path).write_bytes(data[: len(data) - 3])
        with pytest.raises(CheckpointError, match="truncated"):
            memory().restore(snapshot, lambda key: True)
    finally:
        backend.close()


def test_ttl_list_and_map_expire_per_element(make: Factory) -> None:
    now = [0]
    backend = make(clock=lambda: now[0])
    ttl = StateTtlConfig.new_builder(Time.seconds(10)).build()
    listed = ListStateDescriptor("l")
    listed.enable_time_to_live(ttl)
    mapped = MapStateDescriptor("m")
    mapped.enable_time_to_live(ttl)
    items: Any = backend.get_state(listed)
    entries: Any = backend.get_state(mapped)
    backend.current_key = "a"
    items.add(1)
    entries.put("old", 1)
    now[0] = 6_000
    items.add(2)
    entries.put_all({"new": 2})
    assert list(items.get()) == [1, 2]
    assert dict(entries.items()) == {"old": 1, "new": 2}
    now[0] = 10_000
    assert list(items.get()) == [2]
    assert dict(entries.items()) == {"new": 2}
    assert entries.get("old") is None and entries.contains("new")
    now[0] = 16_000
    assert list(items.get()) == []
    assert entries.is_empty()
    assert list(backend.keys("l")) == [] and list(backend.keys("m")) == []


def test_equal_keys_share_their_state_however_they_were_built(make: Factory) -> None:
    backend = make()
    value = backend.get_state(ValueStateDescriptor("v"))
    a, b = "acct-" + str(17), "acct-" + str(17)  # equal strings, two objects
    assert a == b and a is not b
    shared = (("x", 1), ("x", 1))
    separate = (("x", 1), tuple(["x", 1]))
    pairs = [
        ((a, a), (a, b)),  # a self-transfer: one string object twice, or two equal ones
        (shared[:1] * 2, separate),  # one inner tuple twice, or two equal ones
        (frozenset([1, 9]), frozenset([9, 1])),  # equal sets, filled in other orders
        (frozenset({(a, 1), (b, 2)}), frozenset({(b, 2), (a, 1)})),
        # pickle names frozenset's module with this very string object, and would refer
        # to it when the key holds it too
        (("builtins", frozenset({1})), ("".join(["built", "ins"]), frozenset({1}))),
    ]
    for number, (first, second) in enumerate(pairs):
        assert first == second
        backend.current_key = first
        value.update(number)  # type: ignore[attr-defined]
        backend.current_key = second
        assert value.value() == number  # type: ignore[attr-defined]


def test_rocksdb_rows_of_equal_set_keys_are_the_same_in_every_process() -> None:
    from _hash_seeds import printed_under_hash_seeds

    code = (
        "from fraudstream.state.rocksdb.table import key_bytes;"
        "print(key_bytes((frozenset({'acct-17', 'acct-42', 'acct-99', 'x' * 40}), 7)).hex())"
    )
    seen = printed_under_hash_seeds(code)
    assert len(seen) == 1


def test_row_bytes_read_back_as_the_key_and_simple_keys_keep_their_first_format() -> None:
    import pickle

    from fraudstream.state.rocksdb.table import key_bytes

    keys = [7, "acct-1", b"x", 2.5, None, (1, 2), ("a", "a"), (("payeeId", "b"), (3, 4))]
    keys += [frozenset({"x", "y"}), (frozenset({1, 2}), ("z",)), ((),)]
    for key in keys:
        back = pickle.loads(key_bytes(key))
        assert back == key and type(back) is type(key)
    for key in [7, "acct-1", b"x", 2.5, (1, 2), (1, 2.5, None, True)]:
        assert key_bytes(key) == pickle.dumps(key, protocol=pickle.HIGHEST_PROTOCOL)


def test_a_state_file_of_the_first_format_restores_with_rows_found_again(
    make: Factory, tmp_path: Path
) -> None:
    import pickle
    import struct

    from test_parallelism import _reference_hash  # the key-group hash format 1 used

    # Format 1 pickled keys as they came (a frozenset in its iteration order, repeated
    # strings as references) and hashed frozensets by their pickle: written by hand here.
    a, b = "acct-" + str(17), "acct-" + str(17)
    stored = {frozenset({3, 4}): 1, (frozenset({5, 6}), 7): 2, (a, b): 3, 42: 4, "x": 5}

    rows = []
    for key, number in stored.items():
        row = (0).to_bytes(2, "big") + (_reference_hash(key) % 128).to_bytes(2, "big")
        rows.append((row + pickle.dumps(key, protocol=5), pickle.dumps(number, protocol=5)))
    path = tmp_path / "keyed-old.kv"
    with open(path, "wb") as handle:
        handle.write(b"FSKV1\n")
        for key_bytes_, value_bytes in rows:
            handle.write(struct.pack(">II", len(key_bytes_), len(value_bytes)))
            handle.write(key_bytes_ + value_bytes)
    snapshot = StateFile(path.name, "", path.stat().st_size, {0: ("v", "value")}, str(path))
    backend = make()
    backend.restore(snapshot, lambda key: True)
    state = backend.get_state(ValueStateDescriptor("v"))
    for key, expected in stored.items():
        backend.current_key = key
        assert state.value() == expected, key  # type: ignore[attr-defined]
    backend.current_key = (a, a)  # the same key built otherwise
    assert state.value() == 3  # type: ignore[attr-defined]
