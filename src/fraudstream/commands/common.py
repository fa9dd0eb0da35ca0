"""Exit codes and small helpers shared by the subcommands."""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE"]

#: The command did what was asked.
EXIT_OK = 0
#: The job or command failed.
EXIT_FAILED = 1
#: Bad usage or bad input.
EXIT_USAGE = 2
