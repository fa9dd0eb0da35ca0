"""The ``fraudstream`` subcommands, one module each.

A command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(options) -> int``; it imports what it needs inside ``run`` so that the command
line starts fast whatever is installed. :data:`COMMANDS` lists them in ``--help`` order.
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

COMMANDS: list[str] = [
    "fraudstream.commands.demo",
    "fraudstream.commands.serve",
    "fraudstream.commands.run",
    "fraudstream.commands.job",
    "fraudstream.commands.bench",
    "fraudstream.commands.backtest",
    "fraudstream.commands.savepoint",
]
