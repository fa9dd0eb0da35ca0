"""Parallel instances give the results of parallelism 1, up to order between keys."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.fraud.tutorial import build_tutorial_job
from fraudstream.runtime.keygroups import (
    assign_to_key_group,
    key_group_range,
    operator_index_for_key_group,
    stable_hash,
)

DATA = [((i * 7919) % 97, i, 0.5 if i % 4 == 0 else 700.0) for i in range(5000)]


@pytest.mark.parametrize("batch_size", [8, 1024])
@pytest.mark.parametrize("parallelism", [2, 3])
def test_tutorial_results_equal_parallelism_one(parallelism: int, batch_size: int) -> None:
    # Small batches interleave the instances: each must use its own copy of the function.
    def alerts(p: int) -> Counter[str]:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(p).set_batch_size(batch_size)
        return Counter(
            str(a) for a in build_tutorial_job(env.from_collection(DATA)).execute_and_collect()
        )

    assert alerts(parallelism) == alerts(1)
    assert sum(alerts(1).values()) > 0


def test_stable_hash_does_not_depend_on_python_hash_seed() -> None:
    import subprocess
    import sys

    code = (
        "from fraudstream.runtime.keygroups import stable_hash; "
        "print(stable_hash(('payee', 17, 2.5)))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{stable_hash(('payee', 17, 2.5))}\n"}


def test_key_group_ranges_partition_all_groups() -> None:
    for parallelism in (1, 2, 3, 7):
        owned = [list(key_group_range(i, 128, parallelism)) for i in range(parallelism)]
        assert sorted(g for groups in owned for g in groups) == list(range(128))
        for index, groups in enumerate(owned):
            assert all(operator_index_for_key_group(g, 128, parallelism) == index for g in groups)
    assert 0 <= assign_to_key_group("x", 128) < 128


def _reference_hash(key: Any) -> int:
    """The key-group hash as first written (plain recursion, nothing memoized): what
    checkpoints already taken (RocksDB rows carry their key group) were written with."""
    import pickle
    import struct
    import zlib

    mask = (1 << 64) - 1

    def mix(value: int) -> int:
        value &= mask
        value ^= value >> 33
        value = (value * 0xFF51AFD7ED558CCD) & mask
        value ^= value >> 33
        value = (value * 0xC4CEB9FE1A85EC53) & mask
        return value ^ (value >> 33)

    kind = type(key)
    if kind is int:
        return mix(key)
    if kind is str:
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if kind is tuple:
        acc = 0x9E3779B97F4A7C15
        for element in key:
            acc = mix(acc ^ _reference_hash(element))
        return acc
    if kind is bytes:
        return zlib.crc32(key)
    if kind is bool or key is None:
        return 0 if not key else 1
    if kind is float:
        return mix(struct.unpack("<q", struct.pack("<d", key))[0])
    return zlib.crc32(pickle.dumps(key, protocol=4))


keys = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.binary(max_size=6)
    | st.sampled_from([0, 1, -1, 2**64, 2**64 - 1, "", "payeeId"])
    | st.lists(st.integers(), max_size=2),  # Python cannot hash it; pickled
    lambda inner: st.tuples(inner) | st.tuples(inner, inner) | st.tuples(inner, inner, inner),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(key=keys)
def test_the_key_group_hash_never_changes(key: Any) -> None:
    # Twice: once to fill the memos, once from them.
    assert stable_hash(key) == _reference_hash(key)
    assert stable_hash(key) == _reference_hash(key)


def test_equal_keys_of_other_types_do_not_take_each_others_memoized_hash() -> None:
    pairs = [
        (1, True),
        (0, False),
        ("a", StrSub("a")),
        ((1,), (True,)),
        (("payeeId", "beneficiaryId"), ("payeeId", StrSub("beneficiaryId"))),
        ((), ()),
        ((1, [2]), (True, [2])),
    ]
    for first, second in pairs:
        assert first == second
        for key in (first, second, first):
            assert stable_hash(key) == _reference_hash(key)


class StrSub(str):
    pass


def test_equal_frozensets_have_one_key_group_in_every_process() -> None:
    from _hash_seeds import printed_under_hash_seeds

    # {1, 9} and {9, 1} iterate in the order they were filled (both land in one slot),
    # and strings hash differently in every process: pickling the set gave equal keys
    # different key groups.
    assert list(frozenset([1, 9])) != list(frozenset([9, 1]))
    assert stable_hash(frozenset([1, 9])) == stable_hash(frozenset([9, 1]))
    pair = ("acct-17", "acct-42")
    assert stable_hash(frozenset(pair)) == stable_hash(frozenset(reversed(pair)))
    assert stable_hash(frozenset(pair)) != stable_hash(frozenset(("acct-17", "acct-43")))
    assert stable_hash(frozenset()) != stable_hash(frozenset([0]))
    code = (
        "from fraudstream.runtime.keygroups import stable_hash;"
        "print(stable_hash((frozenset({'acct-17', 'acct-42', 'acct-99', 'x' * 40}), 7)))"
    )
    seen = printed_under_hash_seeds(code)
    assert len(seen) == 1


def test_a_job_keyed_by_unordered_pairs_keeps_one_state_per_pair_at_any_parallelism() -> None:
    from _engine_jobs import LockstepSource
    from fraudstream.common import WatermarkStrategy
    from fraudstream.datastream import KeyedProcessFunction, RuntimeContext
    from fraudstream.datastream.state import ValueStateDescriptor

    class Count(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.seen = runtime_context.get_state(ValueStateDescriptor("seen", None))

        def process_element(self, value: Any, ctx: Any) -> Any:
            seen = (self.seen.value() or 0) + 1
            self.seen.update(seen)
            yield (tuple(sorted(value[1])), seen)

    # Transfers between two accounts, one key per pair whatever the direction: each pair
    # comes twice one way through reader 0, then twice the other way through reader 1.
    # a and a + 8 share a slot of a small set, so the two ways iterate (and pickled)
    # differently, and each reader routes its own.
    pairs = 1000
    transfers = []
    for i in range(4 * pairs):
        a, reader = i % pairs, i // (2 * pairs)
        transfers.append((reader, frozenset((a + 8, a) if reader else (a, a + 8)), i))

    def run(parallelism: int) -> Counter[Any]:
        env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(parallelism)
        source = LockstepSource(transfers, every=10**9)
        stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "transfers")
        out = stream.key_by(lambda t: t[1]).process(Count())
        return Counter(out.execute_and_collect())

    expected = run(1)
    assert max(seen for _, seen in expected) == 4
    assert run(2) == expected
