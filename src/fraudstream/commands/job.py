"""``fraudstream job NAME``: run one of the fraud jobs over connectors named on the command line.

``--source``/``--sink``/``--rules`` take connector specs (:mod:`fraudstream.connectors.specs`):
``generator:count=1000000,seed=7``, ``jsonl:PATH``, ``csv:PATH``, ``kafka://HOST:PORT/TOPIC``,
``sqlite:PATH``, ``print``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fraudstream.commands.common import EXIT_OK
from fraudstream.commands.savepoint import execute_with_savepoint_signal
from fraudstream.exceptions import ConfigurationError

NAME = "job"
HELP = "run a fraud job (tutorial, tutorial-timer, rules) over sources and sinks"

#: job name -> "module:function"; the function takes (env, source stream, options) and
#: returns the stream of alerts to write to ``--sink``.
JOBS: dict[str, str] = {
    "tutorial": "fraudstream.fraud.tutorial:cli_job",
    "tutorial-timer": "fraudstream.fraud.tutorial:cli_job_timer",
    "rules": "fraudstream.fraud.rules.job:cli_job",
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``job``."""
    parser.add_argument("name", choices=sorted(JOBS), help="which job")
    parser.add_argument(
        "--source",
        default="generator:count=1000",
        help="transactions: generator[:rate=R,count=N,seed=S] | jsonl:PATH | csv:PATH | "
        "kafka://HOST:PORT/TOPIC (default %(default)s)",
    )
    parser.add_argument(
        "--rules",
        help="rules (rules job): FILE (JSON, JSON lines, CSV) | sqlite:RULEBOOK[,follow=yes|no]"
        "[,poll-ms=N] (start from a rule book, follow its changes) | jsonl:PATH | "
        "kafka://HOST:PORT/TOPIC",
    )
    parser.add_argument(
        "--sink",
        default="print",
        help="alerts: print | jsonl:PATH | sqlite:PATH | kafka://HOST:PORT/TOPIC",
    )
    parser.add_argument("--dead-letters", help="where bad records go: jsonl:PATH | kafka://...")
    parser.add_argument("--parallelism", "-p", type=_positive_int, default=1)
    parser.add_argument("--max-parallelism", type=_positive_int, default=128)
    parser.add_argument("--checkpoint-dir", help="directory for checkpoints")
    parser.add_argument(
        "--checkpoint-interval",
        type=_positive_int,
        help="ms between checkpoints (with --checkpoint-dir; default 1000)",
    )
    parser.add_argument("--from-checkpoint", help="latest | PATH of a checkpoint to restore")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes for the parallel instances (0: one per core; default 1)",
    )
    parser.add_argument(
        "--state-backend", choices=["memory", "rocksdb"], default="memory", help="keyed state"
    )
    parser.add_argument(
        "--engine", choices=["embedded", "flink"], default="embedded", help="which engine runs it"
    )


def job_function(name: str) -> Any:
    """The builder function registered for a job name."""
    import importlib

    module_name, _, function = JOBS[name].partition(":")
    return getattr(importlib.import_module(module_name), function)


def run(options: argparse.Namespace) -> int:
    """Build the job on an embedded environment and run it to the end of its source."""
    from fraudstream.connectors.specs import make_sink
    from fraudstream.datastream import StreamExecutionEnvironment

    _check_checkpoint_options(options)
    if options.engine == "flink":
        from fraudstream.flink import run_job_on_flink

        return run_job_on_flink(options)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(options.parallelism)
    env.set_max_parallelism(options.max_parallelism)
    if options.checkpoint_dir:
        env.enable_checkpointing(options.checkpoint_interval or 1000)
        env.get_checkpoint_config().set_checkpoint_storage_dir(options.checkpoint_dir)
    if options.from_checkpoint:
        env.restore_from(options.from_checkpoint)
    _configure_engine(env, options)
    alerts = job_function(options.name)(env, options)
    if options.sink == "print":
        alerts.print()
    else:
        alerts.sink_to(make_sink(options.sink, "alerts"))
    _route_dead_letters(env, options)
    result = execute_with_savepoint_signal(
        env, f"fraudstream job {options.name}", options.checkpoint_dir
    )
    sys.stdout.flush()
    _report_dead_letters(result.get_all_accumulator_results(), options)
    return EXIT_OK


def _check_checkpoint_options(options: argparse.Namespace) -> None:
    """Checkpoint options that would be ignored, or are empty, are refused."""
    for flag, value in (
        ("--checkpoint-dir", options.checkpoint_dir),
        ("--from-checkpoint", options.from_checkpoint),
    ):
        if value is not None and not value.strip():
            raise ConfigurationError(f"{flag} is empty (an unset variable?)")
    if options.from_checkpoint and not options.checkpoint_dir:
        raise ConfigurationError("--from-checkpoint needs --checkpoint-dir")
    if options.checkpoint_interval is not None and not options.checkpoint_dir:
        raise ConfigurationError(
            "--checkpoint-interval needs --checkpoint-dir (no checkpoints are taken without it)"
        )
    if options.checkpoint_dir:
        from fraudstream.exceptions import CheckpointError
        from fraudstream.runtime.checkpoints import CheckpointStorage

        try:
            CheckpointStorage(options.checkpoint_dir)  # creates it, or says why it cannot
        except CheckpointError as exc:
            raise ConfigurationError(str(exc)) from None
    restore = options.from_checkpoint
    if options.engine == "flink":
        return  # Flink keeps its own checkpoints: its launcher says what it cannot restore
    if restore and restore != "latest" and not (Path(restore) / "_metadata").is_file():
        what = "is not a checkpoint (no _metadata)" if Path(restore).exists() else "does not exist"
        raise ConfigurationError(
            f"--from-checkpoint {restore!r} {what}; give 'latest' or the path of a "
            "chk-N or savepoint-N directory"
        )


def _configure_engine(env: Any, options: argparse.Namespace) -> None:
    """``--workers`` and ``--state-backend``; fewer garbage collections while it runs."""
    import os

    from fraudstream.common.configuration import Configuration
    from fraudstream.runtime.gcscope import CONFIG_KEY

    # The jobs keep a state per key (up to millions of objects): full collections would
    # stall them for nothing (runtime.gcscope).
    env.configure(Configuration().set_boolean(CONFIG_KEY, True))

    if options.workers < 0:
        raise ConfigurationError(
            f"--workers must be 0 (one per core) or more, got {options.workers}"
        )
    workers = options.workers if options.workers > 0 else (os.cpu_count() or 1)
    env.set_worker_processes(workers)
    if options.state_backend == "rocksdb":
        from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend

        env.set_state_backend(EmbeddedRocksDBStateBackend())


def _route_dead_letters(env: Any, options: argparse.Namespace) -> None:
    """Bad records of every source go to ``--dead-letters``, or to stderr when not given."""
    from fraudstream.connectors.deadletters import DeadLetterLogSink, route_dead_letters
    from fraudstream.connectors.specs import make_sink

    dead_letters = getattr(options, "dead_letters", None)
    sink = make_sink(dead_letters, "dead-letters") if dead_letters else DeadLetterLogSink()
    route_dead_letters(env, sink)


def _report_dead_letters(counters: dict[str, int], options: argparse.Namespace) -> None:
    bad = sum(v for k, v in counters.items() if k.endswith(".dead_letters"))
    if bad:
        good = sum(v for k, v in counters.items() if k.endswith(".records_out"))
        where = getattr(options, "dead_letters", None) or "stderr"
        print(
            f"fraudstream: {bad} bad record(s) went to the dead letters ({where}); "
            f"{good} good record(s) were processed",
            file=sys.stderr,
        )
