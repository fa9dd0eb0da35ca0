"""The ``fraudstream`` command line.

Exit codes: 0 done, 1 the job or command failed, 2 bad usage or bad input.
Heavy imports (the web service, Kafka) happen only in the subcommands that need them,
so ``fraudstream run`` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fraudstream.exceptions import ConfigurationError, FraudstreamError, JobFailedError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudstream",
        description="Real-time fraud detection on an embedded PyFlink-compatible engine.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a PyFlink DataStream program on the embedded engine",
        description="Run PROGRAM.py with `import pyflink...` resolved to fraudstream.",
    )
    run.add_argument("program", help="path of the PyFlink program")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the program")

    demo = commands.add_parser("demo", help="run the web demo (engine, generator, rules, UI)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=5656)
    demo.set_defaults(handler=_demo)
    return parser


def _demo(options: argparse.Namespace) -> int:
    print(
        "fraudstream demo: the web demo is not available in this build yet; "
        "try `fraudstream run PROGRAM.py`",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _run_program(path: str, args: list[str]) -> int:
    import os
    import runpy

    import fraudstream

    if not os.path.isfile(path):
        print(f"fraudstream run: no such program file: {path!r}", file=sys.stderr)
        return EXIT_USAGE
    fraudstream.activate()
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    runpy.run_path(path, run_name="__main__")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if options.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if options.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if options.command == "run":
            return _run_program(options.program, options.args)
        handler = options.handler
        result: int = handler(options)
        return result
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except ConfigurationError as exc:
        print(f"fraudstream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JobFailedError as exc:
        print(f"fraudstream: job failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except FraudstreamError as exc:
        print(f"fraudstream: {exc}", file=sys.stderr)
        return EXIT_FAILED
