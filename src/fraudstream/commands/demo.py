"""``fraudstream demo``: engine + generator + rules job + web service + UI in one process."""

from __future__ import annotations

import argparse
import sys

from fraudstream.commands.common import EXIT_FAILED

NAME = "demo"
HELP = "run the web demo (engine, generator, rules, UI)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``demo``."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5656)


def run(options: argparse.Namespace) -> int:
    """Not available yet: the service lands with its issue."""
    print(
        "fraudstream demo: the web demo is not available in this build yet; "
        "try `fraudstream run PROGRAM.py`",
        file=sys.stderr,
    )
    return EXIT_FAILED
