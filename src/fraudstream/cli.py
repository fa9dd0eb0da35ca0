"""The ``fraudstream`` command line.

Exit codes: 0 done, 1 the job or command failed, 2 bad usage or bad input.
Each subcommand lives in :mod:`fraudstream.commands` and imports what it needs only
when it runs (the web service, Kafka), so ``fraudstream run`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from fraudstream.commands import COMMANDS
from fraudstream.commands.common import EXIT_FAILED, EXIT_USAGE
from fraudstream.exceptions import ConfigurationError, FraudstreamError, JobFailedError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudstream",
        description="Real-time fraud detection on an embedded PyFlink-compatible engine.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


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
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        result: int = options.handler(options)
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
    except OSError as exc:  # a path the command was given cannot be used (a file, too long)
        if options.verbose:
            raise
        print(f"fraudstream: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        warnings.showwarning = shown


def _show_warning(message: Warning | str, *_where: Any, **_more: Any) -> None:
    """Warnings as one line on stderr, without the source line that raised them."""
    print(f"fraudstream: warning: {message}", file=sys.stderr)
