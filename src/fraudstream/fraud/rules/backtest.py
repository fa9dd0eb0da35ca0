"""Backtests: replay history through the same rules job and report per rule.

The history (JSON lines of transactions) runs through :func:`build_rules_job` on the
embedded engine, with the rules in force from the first transaction. The report gives,
per rule: alerts, distinct keys, first and last hit (event time of the triggering
transaction) and alerts over time, as text and as a self-contained HTML page (an
inline SVG chart, no scripts, nothing fetched).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fraudstream.fraud.rules.alert import RuleAlert
from fraudstream.fraud.rules.model import Rule
from fraudstream.fraud.transaction import Transaction

__all__ = ["BacktestReport", "RuleReport", "read_history", "run_backtest"]

#: Bad lines whose reasons the report lists (all are counted).
MAX_REASONS = 10
COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


@dataclass
class History:
    """Transactions read from a file, and what could not be read."""

    transactions: list[Transaction] = field(default_factory=list)
    bad_lines: int = 0
    reasons: list[str] = field(default_factory=list)


def read_history(path: str | Path) -> History:
    """Read JSON-lines transactions; bad lines are counted with their reasons, not fatal."""
    from fraudstream.connectors.codecs import decode_transaction_json
    from fraudstream.exceptions import InvalidRecordError

    history = History()
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                history.transactions.append(decode_transaction_json(line.rstrip(b"\r\n")))
            except InvalidRecordError as exc:
                history.bad_lines += 1
                if len(history.reasons) < MAX_REASONS:
                    history.reasons.append(f"line {number}: {exc.reason}")
    return history


@dataclass
class RuleReport:
    """What one rule would have done over the history."""

    rule: Rule
    alerts: int = 0
    keys: set[str] = field(default_factory=set)
    first_hit: int | None = None
    last_hit: int | None = None
    times: list[int] = field(default_factory=list)

    def add(self, alert: RuleAlert) -> None:
        """Count one alert."""
        t = alert.triggering_event.event_time
        self.alerts += 1
        self.keys.add(alert.key)
        self.times.append(t)
        self.first_hit = t if self.first_hit is None else min(self.first_hit, t)
        self.last_hit = t if self.last_hit is None else max(self.last_hit, t)

    def to_json_dict(self) -> dict[str, Any]:
        """The rule's results as JSON fields."""
        return {
            "ruleId": self.rule.rule_id,
            "version": self.rule.version,
            "state": self.rule.rule_state.value,
            "description": self.rule.describe(),
            "alerts": self.alerts,
            "distinctKeys": len(self.keys),
            "firstHit": self.first_hit,
            "lastHit": self.last_hit,
        }


def _utc(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class BacktestReport:
    """The outcome of a backtest."""

    rules: list[RuleReport]
    transactions: int
    late: int
    bad_lines: int = 0
    reasons: list[str] = field(default_factory=list)
    start: int | None = None
    end: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON fields."""
        return {
            "transactions": self.transactions,
            "late": self.late,
            "badLines": self.bad_lines,
            "start": self.start,
            "end": self.end,
            "rules": [r.to_json_dict() for r in self.rules],
        }

    def to_text(self) -> str:
        """A plain-text table."""
        lines = [
            f"backtest over {self.transactions:,} transactions "
            f"({_utc(self.start)} .. {_utc(self.end)} UTC), {self.late:,} late, "
            f"{self.bad_lines:,} unreadable lines",
            "",
            f"{'rule':>6} {'state':7} {'alerts':>9} {'keys':>8}  {'first hit (UTC)':19}  "
            f"{'last hit (UTC)':19}",
        ]
        for report in self.rules:
            lines.append(
                f"{report.rule.rule_id:>6} {report.rule.rule_state.value:7} {report.alerts:>9,} "
                f"{len(report.keys):>8,}  {_utc(report.first_hit):19}  {_utc(report.last_hit):19}"
            )
        lines.append("")
        lines.extend(f"rule {r.rule.rule_id}: {r.rule.describe()}" for r in self.rules)
        lines.extend(f"unreadable: {reason}" for reason in self.reasons)
        return "\n".join(lines)

    def _chart(self, width: int = 760, height: int = 260, buckets: int = 60) -> str:
        left, bottom, top, right = 50, 30, 10, 10
        start = self.start or 0
        span = max(1, (self.end or start) - start)
        series = []
        peak = 1
        for report in self.rules:
            counts = [0] * buckets
            for t in report.times:
                counts[min(buckets - 1, (t - start) * buckets // span)] += 1
            peak = max(peak, *counts)
            series.append(counts)
        plot_w, plot_h = width - left - right, height - top - bottom
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="alerts over time per rule">',
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
            'stroke="#ccc"/>',
            f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11">{peak}</text>',
            f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
            f'<text x="{left}" y="{height - 8}" font-size="11">{html.escape(_utc(start))}</text>',
            f'<text x="{width - right}" y="{height - 8}" text-anchor="end" font-size="11">'
            f"{html.escape(_utc(self.end))}</text>",
        ]
        for index, counts in enumerate(series):
            points = " ".join(
                f"{left + (i + 0.5) * plot_w / buckets:.1f},{top + plot_h - c * plot_h / peak:.1f}"
                for i, c in enumerate(counts)
            )
            color = COLORS[index % len(COLORS)]
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}">'
                f"<title>rule {self.rules[index].rule.rule_id}</title></polyline>"
            )
        parts.append("</svg>")
        return "".join(parts)

    def to_html(self) -> str:
        """A self-contained page: summary, per-rule table, chart of alerts over time."""
        rows = []
        for index, report in enumerate(self.rules):
            color = COLORS[index % len(COLORS)]
            rows.append(
                "<tr>"
                f'<td><span style="color:{color}">&#9632;</span> {report.rule.rule_id}</td>'
                f"<td>{html.escape(report.rule.rule_state.value)}</td>"
                f"<td>{report.alerts:,}</td><td>{len(report.keys):,}</td>"
                f"<td>{html.escape(_utc(report.first_hit))}</td>"
                f"<td>{html.escape(_utc(report.last_hit))}</td>"
                f"<td>{html.escape(report.rule.describe())}</td>"
                "</tr>"
            )
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>fraudstream backtest</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
            "<h1>Backtest</h1>"
            f"<p>{self.transactions:,} transactions from {html.escape(_utc(self.start))} to "
            f"{html.escape(_utc(self.end))} UTC; {self.late:,} late; "
            f"{self.bad_lines:,} unreadable lines.</p>"
            "<table><tr><th>rule</th><th>state</th><th>alerts</th><th>distinct keys</th>"
            "<th>first hit (UTC)</th><th>last hit (UTC)</th><th>rule</th></tr>"
            + "".join(rows)
            + "</table><h2>Alerts over time</h2>"
            + self._chart()
            + (f"<h2>Unreadable lines</h2><ul>{reasons}</ul>" if reasons else "")
            + "</body></html>\n"
        )


def run_backtest(
    rules: Sequence[Rule],
    transactions: Iterable[Transaction],
    *,
    out_of_orderness_ms: int = 300_000,
    parallelism: int = 1,
) -> BacktestReport:
    """Replay ``transactions`` through the rules job with ``rules`` in force from the start.

    SHADOW rules are evaluated like ACTIVE ones (their alerts count for them); PAUSE rules
    are listed with no alerts.
    """
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.rules.job import build_rules_job
    from fraudstream.testing import CapturingSink

    history = list(transactions)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    streams = build_rules_job(
        env.from_collection(history),
        env.from_collection([]),
        initial_rules=rules,
        out_of_orderness_ms=out_of_orderness_ms,
        latency=False,
    )
    alerts, shadow, late = CapturingSink(), CapturingSink(), CapturingSink()
    streams.alerts.sink_to(alerts)
    streams.shadow.sink_to(shadow)
    streams.late.sink_to(late)
    env.execute("fraudstream backtest")
    reports = {r.rule_id: RuleReport(r) for r in sorted(rules, key=lambda r: r.rule_id)}
    for alert in [*alerts.results, *shadow.results]:
        reports[alert.rule_id].add(alert)
    times = [tx.event_time for tx in history]
    return BacktestReport(
        rules=list(reports.values()),
        transactions=len(history),
        late=len(late.results),
        start=min(times) if times else None,
        end=max(times) if times else None,
    )
