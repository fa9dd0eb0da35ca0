"""The conformance corpus on fraudstream and on real Apache Flink, compared.

Every program in ``tests/conformance/catalog.py`` runs on both engines over the same
input; the declared outcome (same output, a pinned difference, fraudstream only, not
supported) must be what happens. Flink programs run two at a time, each on its own
local mini cluster, once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import make_table
from conformance.catalog import CASES, Case, Outcome
from conformance.runner import (
    Run,
    flink_python,
    ordered_groups,
    run_fraudstream,
    run_many_on_flink,
    same_output,
)
from fraudstream.common import Row, Types
from fraudstream.datastream import StreamExecutionEnvironment

ROOT = Path(__file__).resolve().parents[1]


def _flink_or_skip() -> Path:
    python = flink_python()
    if python is None:
        pytest.skip(
            "Apache Flink is not installed: set FRAUDSTREAM_FLINK_PYTHON or create "
            ".venv-flink (./dev test does both)"
        )
    assert python.exists(), f"FRAUDSTREAM_FLINK_PYTHON={python} does not exist"
    return python


def _present(case: Case) -> bool:
    return case.path().exists()


@pytest.fixture(scope="module")
def flink_runs() -> dict[str, Run]:
    """Every present corpus program run on Flink, two at a time."""
    python = _flink_or_skip()
    cases = [c for c in CASES if _present(c)]
    runs = run_many_on_flink([(c.path(), c.args) for c in cases], python, workers=2)
    return {case.name: run for case, run in zip(cases, runs)}


@pytest.mark.flink
@pytest.mark.timeout(1200)  # the first case waits for the whole corpus on Flink (fixture)
@pytest.mark.parametrize("case", CASES, ids=[c.name.replace(" ", "-") for c in CASES])
def test_corpus_program_on_both_engines(case: Case, flink_runs: dict[str, Run]) -> None:
    if not _present(case):
        pytest.skip(f"{case.path()} is absent (the shared fixtures folder is not beside the repo)")
    ours = run_fraudstream(case.path(), case.args)
    verdict = case.verdict(ours, flink_runs[case.name])
    assert verdict is None, verdict


def test_every_program_is_in_the_catalog() -> None:
    programs = {p.name for p in (ROOT / "tests" / "conformance" / "programs").glob("*.py")}
    listed = {c.program for c in CASES}
    assert programs - {"__init__.py"} <= listed
    assert {c.name for c in CASES}.__len__() == len(CASES)


def test_differences_are_pinned_and_explained() -> None:
    for case in CASES:
        if case.outcome is not Outcome.SAME:
            assert case.note, f"{case.name}: say why it differs"
        if case.outcome is Outcome.DIFFERS:
            assert case.pin is not None, f"{case.name}: a difference needs a pin"
        if case.outcome is Outcome.FRAUDSTREAM_ONLY:
            assert case.flink_error, f"{case.name}: which error does Flink raise?"


def test_compatibility_table_is_up_to_date() -> None:
    assert make_table.TABLE.read_text() == make_table.render(), (
        "docs/flink-compatibility.md is stale: run python tests/conformance/make_table.py"
    )


def test_make_table_check_mode_accepts_the_committed_table() -> None:
    script = ROOT / "tests" / "conformance" / "make_table.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_comparison_ignores_order_between_keys_but_not_within_a_key() -> None:
    assert same_output(["b 1", "a 1"], ["a 1", "b 1"])
    assert not same_output(["a 1"], ["a 1", "a 1"])
    assert same_output(["k-1 x", "k-2 y", "k-1 z"], ["k-2 y", "k-1 x", "k-1 z"])
    assert not same_output(["k-1 x", "k-1 z"], ["k-1 z", "k-1 x"])
    assert ordered_groups(["Alert{id=2}", "-x", "sort-3 a"]) == {"sort-3": ["sort-3 a"]}


def test_verdicts_catch_each_kind_of_mismatch() -> None:
    same = Case("same", "x.py", ("f",))
    ok = Run("fraudstream", 0, "a\nb\n", "", 0.1)
    assert same.verdict(ok, Run("flink", 0, "b\na\n", "", 1.0)) is None
    assert "outputs differ" in (same.verdict(ok, Run("flink", 0, "a\n", "", 1.0)) or "")
    assert "exited 1" in (same.verdict(Run("fraudstream", 1, "", "boom", 0.1), ok) or "")
    refused = Case("no", "x.py", ("f",), Outcome.NOT_SUPPORTED, "why")
    err = Run("fraudstream", 2, "", "feature 'x' is not supported", 0.1)
    assert refused.verdict(err, ok) is None
    assert refused.verdict(ok, ok) is not None
    only = Case("only", "x.py", ("f",), Outcome.FRAUDSTREAM_ONLY, "why", flink_error="Attr")
    assert only.verdict(ok, Run("flink", 1, "", "AttributeError", 1.0)) is None
    assert only.verdict(ok, ok) is not None
    pinned = Case("pin", "x.py", ("f",), Outcome.DIFFERS, "why", pin=lambda a, b: len(a) == len(b))
    assert pinned.verdict(ok, Run("flink", 0, "c\nd\n", "", 1.0)) is None
    assert "now the same" in (pinned.verdict(ok, ok) or "")
    assert "not the pinned" in (pinned.verdict(ok, Run("flink", 0, "c\n", "", 1.0)) or "")


def test_named_row_type_names_positional_rows_from_a_collection() -> None:
    # Found by the corpus (transforms.py): Flink hands on rows named by Types.ROW_NAMED.
    env = StreamExecutionEnvironment.get_execution_environment()
    person = Types.ROW_NAMED(["name", "age"], [Types.STRING(), Types.INT()])
    rows = env.from_collection([Row("ada", 36), ("bob", 12)], type_info=person)
    assert list(rows.map(lambda p: f"{p.name}:{p['age']}").execute_and_collect()) == [
        "ada:36",
        "bob:12",
    ]


def test_flink_interpreter_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_FLINK_PYTHON", "/opt/flink/bin/python")
    assert flink_python() == Path("/opt/flink/bin/python")
    monkeypatch.delenv("FRAUDSTREAM_FLINK_PYTHON")
    default = ROOT / ".venv-flink" / "bin" / "python"
    assert flink_python() == (default if default.exists() else None)
    assert "FRAUDSTREAM_FLINK_PYTHON" not in os.environ
