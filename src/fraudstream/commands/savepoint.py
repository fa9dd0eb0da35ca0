"""``fraudstream savepoint DIR``: have the job checkpointing into ``DIR`` take a savepoint.

A running ``fraudstream job ... --checkpoint-dir DIR`` writes its process id to
``DIR/_job.pid`` and takes a savepoint ``DIR/savepoint-<id>`` (never pruned) when it receives
``SIGUSR1`` (and stops right after it on ``SIGUSR2``). This command sends the signal
and waits until the new savepoint is published, then prints its path (restore it with
``--from-checkpoint PATH``). A job restored from a savepoint replays what came after
it: stop the job with the savepoint (``--stop``) to resume it later without repeating
output it committed meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fraudstream.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE

NAME = "savepoint"
HELP = "take a savepoint of the running job that checkpoints into DIR"

#: The file in the checkpoint directory holding the running job's process id.
PID_FILE = "_job.pid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``savepoint``."""
    parser.add_argument("checkpoint_dir", help="the job's --checkpoint-dir")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the savepoint"
    )
    parser.add_argument(
        "--stop",
        action="store_true",
        help="stop the job right after the savepoint (resume later with --from-checkpoint PATH)",
    )


def _savepoints(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("savepoint-*") if (p / "_metadata").exists()}


def run(options: argparse.Namespace) -> int:
    """Signal the job, wait for its savepoint, print the savepoint's path."""
    from fraudstream.runtime.checkpoints import DirectoryClaim

    directory = Path(options.checkpoint_dir)
    pid_file = directory / PID_FILE
    try:
        pid: int | None = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        pid = None
    # Signal only the job that holds the directory now, and only if it is the command
    # line's (which takes savepoints on the signal): a stale or edited pid file must not
    # make this signal another process.
    if pid is None or pid != DirectoryClaim.holder(directory):
        print(
            f"fraudstream savepoint: no running job found on {str(directory)!r} (is a "
            "`fraudstream job ... --checkpoint-dir` running on that directory?)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    before = _savepoints(directory)
    try:
        os.kill(pid, signal.SIGUSR2 if options.stop else signal.SIGUSR1)
    except ProcessLookupError:
        print(f"fraudstream savepoint: the job (pid {pid}) is not running", file=sys.stderr)
        return EXIT_FAILED
    deadline = time.monotonic() + options.timeout
    while time.monotonic() < deadline:
        new = _savepoints(directory) - before
        if new:
            newest = max(new, key=lambda name: int(name.rsplit("-", 1)[1]))
            print(directory / newest)
            return EXIT_OK
        time.sleep(0.05)
    print(
        f"fraudstream savepoint: no savepoint appeared within {options.timeout} s",
        file=sys.stderr,
    )
    return EXIT_FAILED


def execute_with_savepoint_signal(env: Any, job_name: str, checkpoint_dir: str | None) -> Any:
    """Run the job declared on ``env``; ``SIGUSR1`` takes a savepoint while it runs.

    With a checkpoint directory, the process id is written to ``DIR/_job.pid`` for
    ``fraudstream savepoint DIR`` once the job holds the directory (and removed at the
    end). Returns the job's result.
    """
    if not checkpoint_dir:
        return env.execute(job_name)
    client = env.execute_async(job_name)
    pid_file = Path(checkpoint_dir) / PID_FILE
    written = False

    def savepoint(signum: int, frame: Any) -> None:
        with contextlib.suppress(Exception):  # not started yet: the next signal works
            if signum == signal.SIGUSR2:
                client.stop_with_savepoint()
            else:
                client.trigger_savepoint()

    previous = signal.signal(signal.SIGUSR1, savepoint)
    previous_stop = signal.signal(signal.SIGUSR2, savepoint)
    try:
        while True:
            if not written and client.holds_checkpoint_directory():
                # Only once the job owns the directory: a second job started on it fails,
                # and must not take the running one's pid file.
                pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
                written = True
            try:
                return client.get_job_execution_result().result(0.2 if written else 0.01)
            except TimeoutError:
                continue
            except KeyboardInterrupt:
                client.cancel()
                raise
    finally:
        signal.signal(signal.SIGUSR1, previous)
        signal.signal(signal.SIGUSR2, previous_stop)
        if written:
            with contextlib.suppress(OSError):
                if pid_file.read_text(encoding="utf-8").strip() == str(os.getpid()):
                    pid_file.unlink()  # not a next job's, started since this one ended
