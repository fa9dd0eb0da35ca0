"""``fraudstream bench NAME [ARGS...]``: run a benchmark of the source checkout's ``bench/``.

Benchmarks compare fraudstream with its peers (a plain Python loop, Bytewax, PyFlink) in
one run; they live beside the sources, not in the installed package, because their peers
are not dependencies of fraudstream.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from fraudstream.commands.common import EXIT_OK, EXIT_USAGE

NAME = "bench"
HELP = "run a benchmark from the source checkout's bench/ (tutorial, rules, parallel, ...)"


def bench_dir() -> Path:
    """``bench/`` of the source checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[3] / "bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bench``."""
    parser.add_argument("name", help="benchmark name: a file bench/NAME.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark")


def run(options: argparse.Namespace) -> int:
    """Run ``bench/NAME.py`` as ``__main__``."""
    directory = bench_dir()
    name: str = options.name
    available = sorted(p.stem for p in directory.glob("[!_]*.py")) if directory.is_dir() else []
    if not available:
        print(
            "fraudstream bench: benchmarks live in the source checkout's bench/ folder; "
            "install fraudstream from a clone (`./dev bench NAME`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if name not in available:
        print(
            f"fraudstream bench: no benchmark {name!r}; available: {', '.join(available)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.argv = [str(directory / f"{name}.py"), *options.args]
    sys.path.insert(0, str(directory))
    try:
        runpy.run_path(str(directory / f"{name}.py"), run_name="__main__")
    except SystemExit as done:  # benchmarks end with `raise SystemExit(main())`
        return done.code if isinstance(done.code, int) else EXIT_OK
    return EXIT_OK
