"""``fraudstream backtest``: replay history through the rules job and report per rule."""

from __future__ import annotations

import argparse
import sys

from fraudstream.commands.common import EXIT_OK, EXIT_USAGE

NAME = "backtest"
HELP = "replay transaction history through rules; report alerts per rule (text and HTML)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``backtest``."""
    parser.add_argument(
        "--rules", required=True, help="rules file: JSON array, JSON lines or the demo's CSV lines"
    )
    parser.add_argument("--input", required=True, help="history: JSON lines of transactions")
    parser.add_argument("--report", help="also write a self-contained HTML report to this file")
    parser.add_argument(
        "--out-of-orderness-ms",
        type=int,
        default=300_000,
        help="how late a transaction may arrive and still count (default %(default)s)",
    )


def run(options: argparse.Namespace) -> int:
    """Run the backtest; bad rules or an unreadable input are usage errors (exit 2)."""
    from fraudstream.exceptions import RuleValidationError
    from fraudstream.fraud.rules.backtest import read_history, run_backtest
    from fraudstream.fraud.rules.job import load_rules_file

    if options.out_of_orderness_ms < 0:
        print("fraudstream: --out-of-orderness-ms must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        rules = load_rules_file(options.rules)
    except OSError as exc:
        print(f"fraudstream: cannot read rules {options.rules!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuleValidationError as exc:
        print(f"fraudstream: {options.rules}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rules = [r for r in rules if not r.is_control]
    if not rules:
        print(f"fraudstream: {options.rules}: no rules", file=sys.stderr)
        return EXIT_USAGE
    try:
        history = read_history(options.input)
    except OSError as exc:
        print(f"fraudstream: cannot read history {options.input!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"replaying {len(history.transactions):,} transactions ...", file=sys.stderr)
    report = run_backtest(
        rules, history.transactions, out_of_orderness_ms=options.out_of_orderness_ms
    )
    report.bad_lines = history.bad_lines
    report.reasons = history.reasons
    print(report.to_text())
    if options.report:
        try:
            with open(options.report, "w", encoding="utf-8") as out:
                out.write(report.to_html())
        except OSError as exc:
            print(f"fraudstream: cannot write {options.report!r}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"report written to {options.report}", file=sys.stderr)
    return EXIT_OK
