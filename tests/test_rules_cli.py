"""``fraudstream job rules`` over connector specs, with rules from a file or a rules stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudstream.cli import main

RULE = {
    "ruleId": 9,
    "ruleState": "ACTIVE",
    "groupingKeyNames": ["paymentType"],
    "aggregateFieldName": "COUNT_FLINK",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": ">=",
    "limit": 500,
    "windowMinutes": 1,
}


def alerts(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("form", ["file", "stream"])
def test_rules_job_from_a_rules_file_or_stream(tmp_path: Path, form: str) -> None:
    if form == "file":
        rules = tmp_path / "rules.json"
        rules.write_text(json.dumps([RULE]))
        spec = str(rules)
    else:
        rules = tmp_path / "rules.jsonl"
        rules.write_text(json.dumps(RULE) + "\n")
        spec = f"jsonl:{rules}"
    out = tmp_path / "alerts.jsonl"
    source = "generator:count=3000,seed=1"
    assert (
        main(["job", "rules", "--source", source, "--rules", spec, "--sink", f"jsonl:{out}"]) == 0
    )
    found = alerts(out)
    assert found and {a["ruleId"] for a in found} == {9}
    # a count: every transaction from the 500th of a type in the minute on
    assert all(a["aggregate"] == a["eventsInWindow"] >= 500 for a in found)  # type: ignore[operator]
    assert min(a["aggregate"] for a in found) == 500.0  # type: ignore[type-var]


def test_default_rules_are_the_demo_rules(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    assert main(["job", "rules", "--source", "generator:count=5000,seed=3", "--sink",
                 f"jsonl:{out}"]) == 0  # fmt: skip
    assert {a["ruleId"] for a in alerts(out)} >= {4}


def test_invalid_rules_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{**RULE, "windowMinutes": 0}]))
    code = main(["job", "rules", "--source", "generator:count=10", "--rules", str(rules)])
    assert code == 2
    assert "[0].windowMinutes" in capsys.readouterr().err
