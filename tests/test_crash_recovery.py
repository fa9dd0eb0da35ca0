"""A real crash: ``kill -9`` of ``fraudstream job`` at random moments loses and duplicates
no alert once the job is restarted with ``--from-checkpoint latest``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

COUNT = 500_000
SEED = 11


def command(
    out: Path, checkpoints: Path, workers: int, *extra: str, rate: int | None = None
) -> list[str]:
    paced = f",rate={rate}" if rate else ""  # the same transactions, at most rate per second
    return [
        sys.executable,
        "-m",
        "fraudstream",
        "job",
        "tutorial",
        "--source",
        f"generator:count={COUNT},seed={SEED}{paced}",
        "--sink",
        f"jsonl:{out}",
        "--checkpoint-dir",
        str(checkpoints),
        "--checkpoint-interval",
        "200",
        "--parallelism",
        str(workers),
        "--workers",
        str(workers),
        *extra,
    ]


def lines(path: Path) -> Counter[str]:
    return Counter(path.read_text(encoding="utf-8").splitlines())


def published(checkpoints: Path) -> int:
    return sum(1 for p in checkpoints.glob("chk-*") if (p / "_metadata").exists())


def wait_for(condition: object, process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """Poll ``condition`` until true (``True``) or the process ended (``False``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    raise AssertionError("the job made no progress within the timeout")


def output_size(out: Path) -> int:
    return out.stat().st_size if out.exists() else 0


def kill_at_a_random_moment(
    rng: random.Random, process: subprocess.Popen[bytes], out: Path, checkpoints: Path
) -> bool:
    """``kill -9`` before the next checkpoint, right after one, or some way into the
    output after one; ``False`` when the job ended first."""
    target = published(checkpoints) + rng.choice([0, 0, 1, 1])
    if not wait_for(lambda: published(checkpoints) >= target, process):
        return False
    size = output_size(out) + rng.randrange(0, 2000)
    if not wait_for(lambda: output_size(out) >= size or published(checkpoints) > target, process):
        return False
    os.kill(process.pid, signal.SIGKILL)
    return True


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, workers: int
) -> None:
    expected_out = tmp_path / "expected.jsonl"
    subprocess.run(
        command(expected_out, tmp_path / "expected-chk", workers), check=True, timeout=60
    )
    expected = lines(expected_out)
    assert sum(expected.values()) > 100

    out, checkpoints = tmp_path / "out.jsonl", tmp_path / "chk"
    rng = random.Random(workers)
    kills = attempt = 0
    while kills < 4 and attempt < 10:
        attempt += 1
        extra = ["--from-checkpoint", "latest"] if attempt > 1 else []
        process = subprocess.Popen(
            command(out, checkpoints, workers, *extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if kill_at_a_random_moment(rng, process, out, checkpoints):
                kills += 1
        finally:
            process.wait(timeout=30)
    assert kills >= 3
    subprocess.run(
        command(out, checkpoints, workers, "--from-checkpoint", "latest"), check=True, timeout=60
    )
    assert lines(out) == expected


def take_savepoint(checkpoints: Path, *options: str) -> Path:
    taken = subprocess.run(
        [sys.executable, "-m", "fraudstream", "savepoint", str(checkpoints), *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert taken.returncode == 0, taken.stderr
    savepoint = Path(taken.stdout.strip())
    assert savepoint.parent == checkpoints and savepoint.name.startswith("savepoint-")
    assert (savepoint / "_metadata").exists()
    return savepoint


@pytest.mark.slow
def test_stop_with_savepoint_then_resume_from_its_path(tmp_path: Path) -> None:
    expected_out = tmp_path / "expected.jsonl"
    subprocess.run(command(expected_out, tmp_path / "e", 1), check=True, timeout=60)

    out, checkpoints = tmp_path / "out.jsonl", tmp_path / "chk"
    process = subprocess.Popen(command(out, checkpoints, 1), stdout=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: published(checkpoints) >= 1, process)
        kept = take_savepoint(checkpoints)  # the job goes on
        stopped = take_savepoint(checkpoints, "--stop")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert int(kept.name.split("-")[1]) < int(stopped.name.split("-")[1])
    assert sum(lines(out).values()) < sum(lines(expected_out).values())  # stopped early
    subprocess.run(
        command(out, checkpoints, 1, "--from-checkpoint", str(stopped)), check=True, timeout=60
    )
    assert lines(out) == lines(expected_out)


def test_savepoint_without_a_running_job_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", "savepoint", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no running job" in done.stderr


def savepoint_command(checkpoints: Path) -> subprocess.CompletedProcess[str]:
    # In a session of its own: a regression that signals process group 0 hits only it.
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "savepoint", str(checkpoints), "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def test_savepoint_signals_no_process_but_the_job_holding_the_directory(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for stale in (str(bystander.pid), "0", "99999999999999999999", "x"):
            (tmp_path / "_job.pid").write_text(f"{stale}\n")
            done = savepoint_command(tmp_path)
            assert done.returncode == 2, done.stderr
            assert "no running job" in done.stderr
            assert "Traceback" not in done.stderr
            assert bystander.poll() is None  # not signalled
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.slow
def test_a_second_job_on_a_running_jobs_directory_fails_and_takes_nothing(
    tmp_path: Path,
) -> None:
    expected_out = tmp_path / "expected.jsonl"
    subprocess.run(command(expected_out, tmp_path / "e", 1), check=True, timeout=60)

    out, checkpoints = tmp_path / "out.jsonl", tmp_path / "chk"
    first = subprocess.Popen(  # runs for about 5 s
        command(out, checkpoints, 1, rate=COUNT // 5), stdout=subprocess.DEVNULL
    )
    try:
        assert wait_for(lambda: published(checkpoints) >= 1, first)
        second = subprocess.run(
            command(out, checkpoints, 1, "--from-checkpoint", "latest"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert f"in use by another running job (process {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None
        stopped = take_savepoint(checkpoints, "--stop")  # the first job's pid file is intact
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    subprocess.run(
        command(out, checkpoints, 1, "--from-checkpoint", str(stopped)), check=True, timeout=60
    )
    assert lines(out) == lines(expected_out)


@pytest.mark.slow
def test_stop_with_savepoint_waits_for_the_savepoint_behind_a_running_checkpoint(
    tmp_path: Path,
) -> None:
    # Checkpoints every millisecond in 2 workers: the stop usually finds one under way,
    # whose completion must not stop the job before the savepoint is taken.
    for attempt in range(4):
        out, checkpoints = tmp_path / f"out{attempt}.jsonl", tmp_path / f"chk{attempt}"
        job = command(out, checkpoints, 2, rate=COUNT // 5)
        job[job.index("--checkpoint-interval") + 1] = "1"
        process = subprocess.Popen(job, stdout=subprocess.DEVNULL)
        try:
            assert wait_for(lambda c=checkpoints: published(c) >= 3, process)
            take_savepoint(checkpoints, "--stop")
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
