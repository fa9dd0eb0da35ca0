"""Run a snippet under several ``PYTHONHASHSEED`` values: what must not depend on the
process (key groups, RocksDB rows) prints the same under each."""

from __future__ import annotations

import os
import subprocess
import sys


def printed_under_hash_seeds(code: str, seeds: tuple[str, ...] = ("1", "2", "3")) -> set[str]:
    """What ``python -c code`` prints, once per seed (one element when it never differs)."""
    return {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        for seed in seeds
    }
