"""``fraudstream job NAME --engine flink``: start the job in the Flink interpreter.

Apache Flink's Python API lives in its own virtual environment (``apache-flink`` pins
packages that fraudstream's environment should not inherit). The launcher finds that
interpreter, gives it the fraudstream package (and nothing else of this environment) on
``PYTHONPATH`` with the reverse alias's ``sitecustomize`` first, and runs
:mod:`fraudstream.flink.driver` there. The driver's output is this command's output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fraudstream.exceptions import ConfigurationError

__all__ = ["flink_job_env", "flink_python", "run_job_on_flink", "staged_package"]

PACKAGE = Path(__file__).resolve().parents[1]
SITE = Path(__file__).resolve().parent / "_site"

_INSTALL = (
    "create it with: python3 -m venv .venv-flink && "
    ".venv-flink/bin/pip install apache-flink==2.3.0 (needs Java 11+), "
    "or set FRAUDSTREAM_FLINK_PYTHON to its bin/python"
)


def flink_python() -> Path:
    """The Flink environment's interpreter.

    ``FRAUDSTREAM_FLINK_PYTHON`` when set, else ``.venv-flink/bin/python`` in the current
    directory or in the source checkout fraudstream runs from.
    """
    configured = os.environ.get("FRAUDSTREAM_FLINK_PYTHON")
    if configured:
        path = Path(configured)
        if not path.exists():
            raise ConfigurationError(f"FRAUDSTREAM_FLINK_PYTHON={configured!r} does not exist")
        return path
    for base in (Path.cwd(), PACKAGE.parents[1]):
        candidate = base / ".venv-flink" / "bin" / "python"
        if candidate.exists():
            return candidate
    raise ConfigurationError(f"no Apache Flink environment found; {_INSTALL}")


def flink_job_env(python: Path, package_root: Path) -> dict[str, str]:
    """Environment for the Flink interpreter running fraudstream job code.

    Args:
        python: the Flink environment's interpreter; its ``bin`` goes first on ``PATH``,
            because Flink starts its Python workers as ``python`` from ``PATH``.
        package_root: a folder holding the ``fraudstream`` package (and nothing else).
    """
    env = dict(os.environ)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{SITE}{os.pathsep}{package_root}"
    env.pop("PYTHONHOME", None)
    return env


@contextmanager
def staged_package() -> Iterator[Path]:
    """A temporary folder holding only the ``fraudstream`` package (a link to it).

    It goes on the Flink interpreter's ``PYTHONPATH``: this environment's other packages
    must not shadow the Flink environment's pinned ones.
    """
    with tempfile.TemporaryDirectory(prefix="fraudstream-flink-") as staging:
        (Path(staging) / "fraudstream").symlink_to(PACKAGE, target_is_directory=True)
        yield Path(staging)


def run_job_on_flink(options: argparse.Namespace) -> int:
    """Run ``fraudstream job`` on a local Flink mini cluster; returns the exit code."""
    if options.from_checkpoint:
        raise ConfigurationError(
            "--from-checkpoint is not available with --engine flink: fraudstream checkpoints "
            "do not load into Flink; restore a Flink savepoint with `flink run -s PATH` "
            "(see docs/flink-deployment.md)"
        )
    python = flink_python()
    settings = {
        "name": options.name,
        "source": options.source,
        "rules": getattr(options, "rules", None),
        "sink": options.sink,
        "dead_letters": getattr(options, "dead_letters", None),
        "parallelism": options.parallelism,
        "max_parallelism": options.max_parallelism,
        "checkpoint_dir": options.checkpoint_dir,
        "checkpoint_interval": options.checkpoint_interval or 1000,
    }
    with staged_package() as package_root:
        command = [str(python), "-m", "fraudstream.flink.driver", json.dumps(settings)]
        proc = subprocess.run(command, env=flink_job_env(python, package_root), check=False)
    return proc.returncode
