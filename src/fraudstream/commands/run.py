"""``fraudstream run PROGRAM.py [ARGS...]``: a PyFlink program on the embedded engine."""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from fraudstream.commands.common import EXIT_OK, EXIT_USAGE

NAME = "run"
HELP = "run a PyFlink DataStream program on the embedded engine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``run``."""
    parser.description = "Run PROGRAM.py with `import pyflink...` resolved to fraudstream."
    parser.add_argument("program", help="path of the PyFlink program")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the program")


def run(options: argparse.Namespace) -> int:
    """Run the program as ``__main__`` with the pyflink alias active."""
    import fraudstream

    path: str = options.program
    if not os.path.isfile(path):
        print(f"fraudstream run: no such program file: {path!r}", file=sys.stderr)
        return EXIT_USAGE
    fraudstream.activate()
    sys.argv = [path, *options.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    runpy.run_path(path, run_name="__main__")
    return EXIT_OK
