"""The tutorial job at parallelism 1, or both workers of parallelism 2, in this process.

    python bench/parallel_one_core.py {1|2} EVENTS [--columns]

Parallelism 2 runs its two workers round by round in this one process (pipes and all,
as in ``bench/parallel.py``'s "work on one core" line), so a tool that watches one
process sees all the work of both. Meant for valgrind, whose counts do not depend on
what else the machine is doing::

    valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=p2.out \\
        .venv/bin/python bench/parallel_one_core.py 2 220000
    callgrind_annotate p2.out | grep "PROGRAM TOTALS"

Run it for two event counts and divide the difference by the difference in events: the
cost per record without the start-up. Prints the CPU seconds the run took (the job is
built before). The source is the
generator, as ``fraudstream job tutorial --source generator`` reads it; ``--columns``
reads prebuilt columns instead (the engine alone, as ``bench/parallel.py`` does).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _engine_bench import CountingSink, run_workers_in_turn


def runner(parallelism: int, events: int, columns: Any) -> Any:
    """The job compiled for ``parallelism`` instances, not started.

    ``columns``: a source of prebuilt columns to read, or ``None`` for the generator.
    """
    from fraudstream.common import WatermarkStrategy
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.tutorial import build_tutorial_job, cli_job

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism).set_worker_processes(1)
    if columns is not None:
        stream = env.from_source(columns, WatermarkStrategy.no_watermarks(), "tx")
        alerts = build_tutorial_job(stream)
    else:
        alerts = cli_job(env, argparse.Namespace(source=f"generator:count={events},seed=7"))
    alerts.sink_to(CountingSink()).uid("alerts")
    return env._runner(env._take_nodes(), "bench-one-core")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parallelism", type=int, choices=[1, 2])
    parser.add_argument("events", type=int)
    parser.add_argument("--columns", action="store_true", help="read prebuilt columns")
    args = parser.parse_args()
    columns = None
    if args.columns:  # read once; every worker's job takes its own part
        from _data import tutorial_transactions
        from parallel import ColumnSource

        columns = ColumnSource(tutorial_transactions(args.events), args.parallelism)
    runners = [runner(args.parallelism, args.events, columns) for _ in range(args.parallelism)]
    # As in forked workers: what exists before the job stays out of the collector.
    gc.collect()
    gc.freeze()
    started = time.process_time()
    if args.parallelism == 1:
        runners[0].run()
    else:
        run_workers_in_turn(runners)
    print(f"parallelism {args.parallelism}: {time.process_time() - started:.3f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
