"""Parallel instances give the results of parallelism 1, up to order between keys."""

from __future__ import annotations

from collections import Counter

import pytest

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
