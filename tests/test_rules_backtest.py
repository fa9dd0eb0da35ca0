"""``fraudstream backtest``: the same job over history, a text and an HTML report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fraudstream.cli import main
from fraudstream.connectors.codecs import encode_transaction_json
from fraudstream.fraud.rules import DEMO_RULES
from fraudstream.fraud.transaction import Transaction


def history(path: Path, bad: bool = False) -> Path:
    lines = []
    t = 1_700_000_000_000
    for i in range(600):
        t += 60_000
        amount = 6_000_000.0 if i in (300, 301) else 10.0 + i % 7
        tx = Transaction(i + 1, t, i % 5, 9 if i in (300, 301) else i % 4, amount, "CRD", t)
        lines.append(encode_transaction_json(tx).decode())
        if bad and i == 10:
            lines.append('{"transactionId": "x"}')
            lines.append("not json at all")
    path.write_text("\n".join(lines) + "\n")
    return path


def rules_file(path: Path, rules: object = DEMO_RULES) -> Path:
    path.write_text(json.dumps(list(rules)))  # type: ignore[call-overload]
    return path


def test_backtest_reports_per_rule_in_text_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    code = main(
        [
            "backtest",
            "--rules", str(rules_file(tmp_path / "rules.json")),
            "--input", str(history(tmp_path / "history.jsonl", bad=True)),
            "--report", str(report),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "backtest over 600 transactions" in out and "2 unreadable lines" in out
    rows = {
        int(m.group(1)): (int(m.group(2).replace(",", "")), int(m.group(3)))
        for m in re.finditer(r"^\s+(\d) \w+\s+([\d,]+)\s+(\d+)", out, re.M)
    }
    # Rule 3 (SUM >= 10,000,000 per beneficiary over a day): beneficiary 9, at the 2nd payment.
    assert rows[3] == (1, 1)
    assert rows[1] == (0, 0)  # the two payments are from different payees
    assert rows[2] == (0, 0)  # paused
    assert rows[4] == (6, 1)  # 600 CRD payments, reset every 100
    assert "line 12:" in out
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polyline" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "Rule 3 (v0, ACTIVE)" in page


@pytest.mark.parametrize(
    ("rules", "needle"),
    [
        ([{**DEMO_RULES[0], "aggregatorFunctionType": "MEDIAN"}], "[0].aggregatorFunctionType"),
        ([{**DEMO_RULES[0], "groupingKeyNames": []}], "[0].groupingKeyNames"),
        ([], "no rules"),
    ],
)
def test_bad_rules_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: object, needle: str
) -> None:
    code = main(
        [
            "backtest",
            "--rules", str(rules_file(tmp_path / "rules.json", rules)),
            "--input", str(history(tmp_path / "history.jsonl")),
        ]
    )  # fmt: skip
    assert code == 2
    assert needle in capsys.readouterr().err


def test_missing_files_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(rules_file(tmp_path / "rules.json"))
    assert main(["backtest", "--rules", rules, "--input", str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read history" in capsys.readouterr().err
    assert main(["backtest", "--rules", str(tmp_path / "x.json"), "--input", rules]) == 2
    assert "cannot read rules" in capsys.readouterr().err
