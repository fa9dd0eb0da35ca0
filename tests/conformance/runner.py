"""Run corpus programs on fraudstream and on Apache Flink, and compare what they print.

    python tests/conformance/runner.py [NAME ...]   # run the corpus, print times per engine

fraudstream runs a program with ``fraudstream run PROGRAM`` in this interpreter's
environment; Flink runs it with the interpreter of the Flink virtual environment
(``FRAUDSTREAM_FLINK_PYTHON``, else ``.venv-flink/bin/python``), whose ``bin`` comes first
on ``PATH`` so that Flink's Python workers find PyFlink too. The corpus shares two Flink
interpreters (``flink_batch.py``): JVM start-up dominates a small program's run.

Outputs are compared as multisets of lines, because the order between keys (and between
the inputs of a union or connect) is not defined. Where a program prints lines whose
first word is ``GROUP-KEY`` (``sort-1 ...``), the order of the lines of each such group
must match as well: the order of one key's records is defined on both engines.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fraudstream.flink.launcher import flink_job_env, staged_package

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
SHARED = ROOT.parent / "shared"
BATCH = Path(__file__).resolve().parent / "flink_batch.py"
MARK = "@@conformance"
FLINK_TIMEOUT_S = 240
FRAUDSTREAM_TIMEOUT_S = 60


@dataclass(frozen=True)
class Run:
    """What one engine did with one program."""

    engine: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        """The printed lines, without the trailing empty one."""
        return self.stdout.splitlines()

    def explain(self) -> str:
        """A short account of the run for assertion messages."""
        tail = "\n".join(line for line in self.stderr.splitlines() if line.strip())[-3000:]
        return f"{self.engine} exited {self.returncode}; stdout:\n{self.stdout}\nstderr:\n{tail}"


def flink_python() -> Path | None:
    """The Flink venv's interpreter, or ``None`` when there is none."""
    configured = os.environ.get("FRAUDSTREAM_FLINK_PYTHON")
    if configured:
        return Path(configured)
    default = ROOT / ".venv-flink" / "bin" / "python"
    return default if default.exists() else None


def flink_env(python: Path, package_root: Path) -> dict[str, str]:
    """Environment for a Flink run: as ``fraudstream job --engine flink`` sets it up.

    The Flink venv's ``bin`` comes first on ``PATH``; the fraudstream package (alone, from
    ``package_root``) and its reverse alias are on ``PYTHONPATH``, so that programs that
    import fraudstream's jobs (``rules_job.py``) find them; the others never notice.
    """
    env = flink_job_env(python, package_root)
    env.pop("COV_CORE_SOURCE", None)
    return env


def _run(engine: str, command: Sequence[str], env: dict[str, str], timeout: float) -> Run:
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return Run(engine, -9, out, f"timed out after {timeout} s", time.perf_counter() - started)
    return Run(engine, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started)


def run_fraudstream(program: Path, args: Sequence[str] = ()) -> Run:
    """``fraudstream run PROGRAM`` in this environment."""
    command = [sys.executable, "-m", "fraudstream", "run", str(program), *args]
    return _run("fraudstream", command, dict(os.environ), FRAUDSTREAM_TIMEOUT_S)


def run_flink(program: Path, python: Path, args: Sequence[str] = ()) -> Run:
    """The program on a local Flink mini cluster, with the Flink venv's interpreter."""
    with staged_package() as root:
        command = [str(python), str(program), *args]
        return _run("flink", command, flink_env(python, root), FLINK_TIMEOUT_S)


def _split(text: str, count: int) -> list[tuple[str, int, float]]:
    """Per program: (output, exit code, seconds), from ``flink_batch.py`` markers."""
    parts: list[tuple[str, int, float]] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith(MARK + " begin "):
            current = []
        elif line.startswith(MARK + " end "):
            _, _, code, seconds = line.split()
            parts.append(("".join(current), int(code), float(seconds)))
        else:
            current.append(line)
    missing = count - len(parts)
    parts += [("".join(current) if i == 0 else "", -1, 0.0) for i in range(max(missing, 0))]
    return parts


def run_batch_on_flink(programs: Sequence[tuple[Path, Sequence[str]]], python: Path) -> list[Run]:
    """Programs one after another in one Flink interpreter (one JVM), see ``flink_batch``."""
    if any(args for _, args in programs):
        return [run_flink(program, python, args) for program, args in programs]
    command = [str(python), str(BATCH), *(str(program) for program, _ in programs)]
    timeout = FLINK_TIMEOUT_S * max(len(programs), 1)
    with staged_package() as root:
        whole = _run("flink", command, flink_env(python, root), timeout)
    outs = _split(whole.stdout, len(programs))
    errs = _split(whole.stderr, len(programs))
    runs = []
    for (out, code, seconds), (err, _, _) in zip(outs, errs):
        if code == -1:
            err = err or whole.stderr[-3000:]
        runs.append(Run("flink", code, out, err, seconds))
    return runs


def run_many_on_flink(
    programs: Sequence[tuple[Path, Sequence[str]]], python: Path, workers: int = 2
) -> list[Run]:
    """Run programs on Flink in ``workers`` interpreters at once, results in input order."""
    batches = [list(range(i, len(programs), workers)) for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(
            pool.map(lambda idx: run_batch_on_flink([programs[i] for i in idx], python), batches)
        )
    runs: list[Run | None] = [None] * len(programs)
    for indexes, results in zip(batches, done):
        for i, run in zip(indexes, results):
            runs[i] = run
    return [run for run in runs if run is not None]


def ordered_groups(lines: Iterable[str]) -> dict[str, list[str]]:
    """Lines whose first word is ``GROUP-KEY``, per first word, in printed order."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for line in lines:
        head = line.split(" ", 1)[0]
        if "-" in head.strip("-"):
            groups[head].append(line)
    return dict(groups)


def same_output(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """Equal as multisets, and equal in order within each ``GROUP-KEY`` group."""
    return sorted(ours) == sorted(theirs) and ordered_groups(ours) == ordered_groups(theirs)


def main(argv: Sequence[str]) -> int:
    """Run the corpus (or the named cases) on both engines; print times and verdicts."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conformance.catalog import CASES, Outcome

    python = flink_python()
    if python is None or not python.exists():
        print("no Flink interpreter: set FRAUDSTREAM_FLINK_PYTHON or create .venv-flink")
        return 2
    cases = [c for c in CASES if not argv or (c.name in argv and c.path().exists())]
    cases = [c for c in cases if c.path().exists()]
    started = time.perf_counter()
    ours = [run_fraudstream(c.path(), c.args) for c in cases]
    ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    theirs = run_many_on_flink([(c.path(), c.args) for c in cases], python)
    flink_seconds = time.perf_counter() - started
    failures = 0
    for case, a, b in zip(cases, ours, theirs):
        verdict = case.verdict(a, b)
        failures += verdict is not None
        status = "ok" if verdict is None else f"FAILED: {verdict}"
        expected = case.outcome.value if case.outcome is not Outcome.SAME else "same"
        print(f"{case.name:<34} {expected:<22} {a.seconds:6.2f} s {b.seconds:6.2f} s  {status}")
    print(
        f"{len(cases)} programs: fraudstream {ours_seconds:.1f} s (one after another), "
        f"Flink {flink_seconds:.1f} s (2 at a time)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
