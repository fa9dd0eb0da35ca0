"""Run several PyFlink programs in one Flink interpreter, one after another.

    $FRAUDSTREAM_FLINK_PYTHON tests/conformance/flink_batch.py PROGRAM.py [PROGRAM.py ...]

Starting the JVM and PyFlink's gateway dominates a small program's run time, so the
corpus shares one gateway: each program runs as ``__main__`` (as ``python PROGRAM.py``
would run it) and its own jobs start their own local mini clusters. Each program's
output, on both stdout and stderr, is framed by marker lines that carry its exit code,
so that the caller can split the streams per program.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
import traceback

MARK = "@@conformance"


def _mark(text: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        stream.write(f"{MARK} {text}\n")
        stream.flush()


def main(programs: list[str]) -> int:
    """Run each program; frame its output: ``MARK begin PATH`` ... ``MARK end CODE SECONDS``."""
    for program in programs:
        _mark(f"begin {program}")
        code = 0
        started = time.perf_counter()
        saved_argv, saved_path = list(sys.argv), list(sys.path)
        sys.argv = [program]
        sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
        try:
            runpy.run_path(program, run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.argv, sys.path = saved_argv, saved_path
        _mark(f"end {code} {time.perf_counter() - started:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
