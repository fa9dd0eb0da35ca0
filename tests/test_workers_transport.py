"""Batches between workers: the encoding round-trips every value exactly, and the hash
exchange sends each key to its key group's instance."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.runtime.exchange import ExchangeOutput
from fraudstream.runtime.keygroups import assign_to_key_group, operator_index_for_key_group
from fraudstream.runtime.workers.transport import DATA, decode, encode


class Point(NamedTuple):
    x: int
    y: float


@dataclass(frozen=True)
class Tagged:
    tag: str
    value: Any


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (True is not 1, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if is_dataclass(a):  # field by field, so a NaN inside is still the same NaN
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    return bool(a == b)


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=True)
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
objects = st.builds(Point, st.integers(), st.floats(allow_nan=False)) | st.builds(
    Tagged, st.text(max_size=3), plain
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(plain | objects, max_size=8), stamps=st.none() | st.lists(st.integers()))
def test_a_message_list_round_trips_exactly(values: list[Any], stamps: list[int] | None) -> None:
    messages = [(DATA, (1, 0, 2), values, stamps)]
    assert same(decode(encode(messages)), messages)


def test_built_in_values_take_marshal_and_objects_pickle() -> None:
    assert encode([(DATA, (1, 0, 0), [(1, 2, 3.0)], None)])[:1] == b"m"
    assert encode([(DATA, (1, 0, 0), [Point(1, 2.0)], None)])[:1] == b"p"
    assert decode(encode([(DATA, (1, 0, 0), [True, 1, 1.0], None)]))[0][2] == [True, 1, 1.0]


class Collect:
    def __init__(self) -> None:
        self.values: list[Any] = []
        self.stamps: list[Any] = []

    def push(self, values: list[Any], timestamps: list[int] | None) -> None:
        self.values.extend(values)
        self.stamps.extend(timestamps or [])


def instance_of(key: Any, parallelism: int) -> int:
    return operator_index_for_key_group(assign_to_key_group(key, 128), 128, parallelism)


@pytest.mark.parametrize("stamped", [False, True])
@pytest.mark.parametrize("keys", [7, 173, 5000])
def test_the_hash_exchange_routes_every_key_to_its_instance(stamped: bool, keys: int) -> None:
    # 7 keys: cached after the first batch (the loop for seen keys). 173: the cache is
    # cleared every 50 keys, so batches switch between the loops. 5000: a new key in
    # every record (the loop for new keys).
    targets = [Collect() for _ in range(3)]
    exchange = ExchangeOutput(targets, "hash", lambda v: v[0], 128, 0)
    exchange._CACHE_LIMIT = 50  # also route after the cache is cleared
    records = [(i % keys, i) for i in range(2000)]
    for start in range(0, len(records), 100):
        batch = records[start : start + 100]
        exchange.push(batch, [v[1] for v in batch] if stamped else None)
    for index, target in enumerate(targets):
        assert target.values == [r for r in records if instance_of(r[0], 3) == index]
        assert target.stamps == ([v[1] for v in target.values] if stamped else [])


@pytest.mark.parametrize("stamped", [False, True])
@pytest.mark.parametrize("new_keys_often", [False, True])
def test_a_record_whose_key_selector_fails_goes_to_the_first_instance(
    stamped: bool, new_keys_often: bool
) -> None:
    # There the keyed operator computes the key again and fails as one instance would
    # (naming the record, or diverting it to its error output); the batch goes on.
    targets = [Collect(), Collect()]
    exchange = ExchangeOutput(targets, "hash", lambda v: v["account"], 128, 0)
    exchange._new_keys_often = new_keys_often  # the loop the previous batch chose
    batch = [{"account": 1}, {"other": 2}, {"account": 2}, None, {"account": 3}]
    stamps = [10, 20, 30, 40, 50]
    exchange.push(batch, stamps if stamped else None)

    def instance(record: Any) -> int:
        if not record or "account" not in record:
            return 0
        return instance_of(record["account"], 2)

    for index, target in enumerate(targets):
        chosen = [i for i, record in enumerate(batch) if instance(record) == index]
        assert target.values == [batch[i] for i in chosen]
        assert target.stamps == ([stamps[i] for i in chosen] if stamped else [])
    assert set(exchange._route) == {1, 2, 3}  # a failure is not cached


@pytest.mark.parametrize("new_keys_often", [False, True])
def test_a_key_not_routed_yet_does_not_send_its_batch_down_the_slow_path(
    new_keys_often: bool,
) -> None:
    calls = 0

    def key_of(value: tuple[int, int]) -> int:
        nonlocal calls
        calls += 1
        return value[0]

    targets = [Collect(), Collect()]
    exchange = ExchangeOutput(targets, "hash", key_of, 128, 0)
    exchange.push([(key, 0) for key in range(50)], None)  # 50 keys routed and cached
    before = [len(target.values) for target in targets]
    calls = 0
    exchange._new_keys_often = new_keys_often  # the loop the previous batch chose
    batch = [(i % 50, i) for i in range(1, 1000)] + [(777, 1000)]  # a new key, last
    exchange.push(batch, None)
    # Every record once; in the loop for seen keys, the new key's record once more to
    # route it (restarting the batch on the slow path would have called the selector
    # ~2000 times).
    assert calls == (1000 if new_keys_often else 1001)
    assert not exchange._new_keys_often  # one new key in 1000: the next batch's loop
    for index, target in enumerate(targets):
        expected = [r for r in batch if instance_of(r[0], 2) == index]
        assert target.values[before[index] :] == expected


def test_records_sharing_objects_cross_between_workers_intact() -> None:
    account, big = 7, 2**70
    values = [(account, 1, 0.5), (account, 2, 600.0), (big, 3, 1.0), [big, "x"]]
    messages = [(DATA, (1, 0, 0), values, [1, 2, 3, 4]), (DATA, (1, 0, 1), values, None)]
    data = encode(messages)
    assert data[:1] == b"m"
    assert same(decode(data), messages)


def test_what_marshal_cannot_write_crosses_by_pickle() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    data = encode([(DATA, (1, 0, 0), [looped], None)])
    assert data[:1] == b"p"
    back = decode(data)[0][2][0]
    assert back[0] == 1 and back[1] is back


def test_a_key_the_key_group_hash_cannot_take_fails_rather_than_going_astray() -> None:
    @dataclass(frozen=True)
    class Local:  # hashable, but pickle cannot name a class defined in a function
        account: int

    exchange = ExchangeOutput([Collect(), Collect()], "hash", lambda v: Local(v), 128, 0)
    with pytest.raises(Exception, match="pickle"):
        exchange.push([1, 2, 3], None)


@pytest.mark.parametrize("new_keys_often", [False, True])
def test_a_record_whose_key_python_cannot_hash_goes_to_the_first_instance(
    new_keys_often: bool,
) -> None:
    targets = [Collect(), Collect()]
    exchange = ExchangeOutput(targets, "hash", lambda v: v[0], 128, 0)
    exchange._new_keys_often = new_keys_often
    batch: list[Any] = [(k, i) for i, k in enumerate(range(40))]
    batch[5::7] = [([i], i) for i in range(5, 40, 7)]
    stamps = list(range(len(batch)))
    exchange.push(batch, stamps)
    for index, target in enumerate(targets):
        chosen = [
            i
            for i, (key, _) in enumerate(batch)
            if (0 if isinstance(key, list) else instance_of(key, 2)) == index
        ]
        assert target.values == [batch[i] for i in chosen]
        assert target.stamps == chosen
