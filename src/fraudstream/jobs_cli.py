"""Subcommands that run the product's jobs (``job``, ``demo``, ``backtest``, ``bench``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    """Register the job subcommands on the top-level parser."""
    job = commands.add_parser("job", help="run one of fraudstream's fraud jobs")
    job.add_argument("name", choices=["tutorial", "tutorial-timer", "rules"])
    job.set_defaults(handler=_job)


def _job(options: argparse.Namespace) -> int:
    from fraudstream.fraud.jobs import run_job_command

    return run_job_command(options)
