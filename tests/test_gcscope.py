"""LongLivedStateGC: explicit, scoped, restored; nested scopes share one setting."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fraudstream.common.configuration import Configuration
from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.runtime.gcscope import CONFIG_KEY, JOB_THRESHOLDS, LongLivedStateGC


@pytest.fixture
def default_gc() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_scope_raises_thresholds_freezes_and_restores(default_gc: tuple[int, int, int]) -> None:
    assert not LongLivedStateGC.active()
    with LongLivedStateGC():
        assert gc.get_threshold() == JOB_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert LongLivedStateGC.active()
    assert gc.get_threshold() == default_gc
    assert gc.get_freeze_count() == 0
    assert not LongLivedStateGC.active()


def test_nested_scopes_restore_only_at_the_last_exit(default_gc: tuple[int, int, int]) -> None:
    with LongLivedStateGC():
        with LongLivedStateGC():
            assert gc.get_threshold() == JOB_THRESHOLDS
        assert gc.get_threshold() == JOB_THRESHOLDS  # the outer scope still runs
    assert gc.get_threshold() == default_gc


def test_scope_is_restored_after_an_error(default_gc: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), LongLivedStateGC():
        raise RuntimeError("job failed")
    assert gc.get_threshold() == default_gc
    assert gc.get_freeze_count() == 0


def test_a_job_runs_under_the_scope_only_when_configured(
    default_gc: tuple[int, int, int],
) -> None:
    seen: list[tuple[int, int, int]] = []

    def record(value: int) -> int:
        seen.append(gc.get_threshold())
        return value

    for configured in (False, True):
        env = StreamExecutionEnvironment.get_execution_environment()
        if configured:
            env.configure(Configuration().set_boolean(CONFIG_KEY, True))
        env.from_collection([1, 2]).map(record).print()
        env.execute()
    assert seen == [default_gc, default_gc, JOB_THRESHOLDS, JOB_THRESHOLDS]
    assert gc.get_threshold() == default_gc


def test_an_applications_own_freeze_survives_the_scope() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with LongLivedStateGC():
            assert gc.get_freeze_count() >= frozen
        assert gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()
