"""Plain-access key selectors run as ``operator``'s callables: same keys, same errors."""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import pytest

from fraudstream.datastream import StreamExecutionEnvironment
from fraudstream.datastream._access import plain_access_equivalent
from fraudstream.datastream._adapters import as_key_selector
from fraudstream.exceptions import JobFailedError


class Payment(NamedTuple):
    account_id: int
    amount: float

    def get_account_id(self) -> int:
        return self.account_id


RECORDS: list[Any] = [(3, "x"), {"k": 1, 0: "zero"}, Payment(7, 1.5), [9, 8], "ab", None, 5]


def outcome(function: Any, record: Any) -> tuple[str, Any]:
    try:
        return "value", function(record)
    except Exception as exc:
        return type(exc).__name__, str(exc)


OFFSET = 1


@pytest.mark.parametrize(
    ("selector", "kind"),
    [
        (lambda t: t[0], operator.itemgetter),
        (lambda t: t[-1], operator.itemgetter),
        (lambda t: t["k"], operator.itemgetter),
        (lambda t: t[(1, 2)], operator.itemgetter),
        (lambda t: t.account_id, operator.attrgetter),
        (lambda t: t.get_account_id(), operator.methodcaller),
    ],
)
def test_a_plain_access_gives_the_same_value_or_error_as_the_lambda(
    selector: Any, kind: type
) -> None:
    fast = plain_access_equivalent(selector)
    assert isinstance(fast, kind)
    for record in RECORDS:
        assert outcome(fast, record) == outcome(selector, record)


def test_anything_more_than_a_plain_access_is_kept_as_written() -> None:
    scale = 2

    def named(t: Any) -> Any:
        return t[0]

    kept = [
        lambda t: t[0] + 1,
        lambda t: t[OFFSET],  # reads a global: it may change
        lambda t: t[scale],  # a closure
        lambda t: t.get(0),  # a call with arguments
        lambda t: (t[0], t[1]),
        lambda t, u=0: t[0] if u else t[1],
        lambda *t: t[0],
        lambda **t: t["k"],
        lambda t: t,
        operator.itemgetter(0),  # already C
        len,
        Payment(1, 2.0).get_account_id,  # a bound method
    ]
    for selector in kept:
        assert plain_access_equivalent(selector) is None
    assert plain_access_equivalent(named) is not None  # a def of the same shape is fine


def test_key_by_uses_the_equivalent_and_keeps_key_selector_objects() -> None:
    class ByAccount:
        def get_key(self, value: Any) -> Any:
            return value[0]

    selector = ByAccount()
    assert as_key_selector(selector) == selector.get_key
    assert isinstance(as_key_selector(lambda t: t[0]), operator.itemgetter)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_a_failing_plain_access_names_the_record(parallelism: int) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(parallelism)
    env.from_collection([(1, 2.0), (2,), (3, 4.0)]).key_by(lambda t: t[1]).map(lambda t: t).name(
        "keyed"
    ).print()
    with pytest.raises(JobFailedError) as info:
        env.execute()
    assert info.value.record == (2,)
    assert "IndexError" in str(info.value)


@pytest.mark.parametrize(("parallelism", "workers"), [(1, 1), (2, 1), (2, 2)])
def test_records_whose_key_fails_go_to_the_error_output_at_any_parallelism(
    tmp_path: Any, parallelism: int, workers: int
) -> None:
    from _engine_jobs import FileCommitSink
    from fraudstream.datastream import OutputTag

    # Some records have no field 1 (the key selector fails), and some have a list for
    # a key: unhashable, which the exchange cannot route, yet a function that keeps no
    # state processes it at parallelism 1; so it must be at any parallelism.
    records: list[Any] = [(i % 5, i) if i % 7 else (i,) for i in range(200)]
    records[3::11] = [(i, [i]) for i in range(3, 200, 11)]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism).set_worker_processes(workers).set_batch_size(16)
    errors = OutputTag("errors")
    counted = (
        env.from_collection(records)
        .key_by(lambda t: t[1] if isinstance(t[1], list) else t[1] % 3)
        .map(lambda t: repr(t))
        .side_output_on_error(errors)
    )
    good, bad = FileCommitSink(tmp_path / "good"), FileCommitSink(tmp_path / "bad")
    counted.sink_to(good)
    counted.get_side_output(errors).map(lambda failed: repr(failed[0])).sink_to(bad)
    env.execute()

    assert sorted(good.results()) == sorted(repr(r) for r in records if len(r) == 2)
    assert sorted(bad.results()) == sorted(repr(r) for r in records if len(r) == 1)
    assert sum(isinstance(r[-1], list) for r in records) == 18
