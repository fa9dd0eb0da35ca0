"""Parallelism in worker processes: the tutorial job, parallelism 2 in 2 processes vs 1.

    python bench/parallel.py [--events N] [--repeat R] [--json FILE] [--peers]

Every configuration runs the same prebuilt ``(account, timestamp, amount)`` tuples
(source -> key_by -> FraudDetector -> counting sink) and must find the same number of
alerts. The source is split over readers by account, so with 2 processes each reads
half and about half of its records cross to the other process at the ``key_by``.
Printed: events/s per configuration (best of R, wall time of ``execute`` including
forking the workers) and the ratio to parallelism 1 (target >= 1.6 on 2 cores). Then
the same job as ``fraudstream job tutorial --source generator`` runs it, the source
making its transactions as the tutorial's does (p=1 and p=2 in 2 processes). With
``--peers``, Bytewax runs the same detector over the same split in 1 and in 2 processes
(``peers/bytewax_parallel.py``), for its ratio next to ours. Its time starts once its
processes are up with their share built (spawning them is not counted, connecting the
cluster is), where ours includes forking the workers: a little in Bytewax's favour.

The readers take their records from columns of machine numbers (``array``), building
each batch's tuples as they read, in every configuration alike. Reading tuples that the
parent process built would touch (reference-count) every inherited object in a forked
worker and copy each memory page of the data set there, a cost of ``fork``, not of the
engine (``--inherited`` measures it that way, as the first version of this benchmark did).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import tutorial_transactions
from _engine_bench import CountingSink, PartitionedSource, run_workers_in_turn
from fraudstream.connectors.base import Source, SourceReader


class ColumnSource(Source[Any]):
    """The records of a list, split over readers by ``record[0] % parallelism``, kept as
    columns (``array``) from which each batch's tuples are made as it is read."""

    def __init__(self, records: list[Any], parallelism: int = 1) -> None:
        self.parts = []
        for index in range(parallelism):
            part = [r for r in records if r[0] % parallelism == index]
            accounts, times, amounts = zip(*part) if part else ((), (), ())
            self.parts.append((array("q", accounts), array("q", times), array("d", amounts)))

    def create_reader(self, subtask_index: int, parallelism: int) -> SourceReader[Any]:
        """The reader of one part."""
        if parallelism != len(self.parts):
            raise ValueError(f"split for {len(self.parts)} readers, not {parallelism}")
        return _ColumnReader(self.parts[subtask_index])


class _ColumnReader(SourceReader[Any]):
    def __init__(self, columns: tuple[array[int], array[int], array[float]]) -> None:
        self.columns = columns
        self.position = 0

    def poll(self, max_records: int) -> Sequence[Any] | None:
        accounts, times, amounts = self.columns
        start = self.position
        if start >= len(accounts):
            return None
        end = start + max_records
        self.position = min(end, len(accounts))
        return list(zip(accounts[start:end], times[start:end], amounts[start:end]))

    def snapshot_position(self) -> Any:
        return self.position

    def restore_position(self, position: Any) -> None:
        self.position = int(position)


def run(
    data: list[Any], parallelism: int, workers: int, inherited: bool = False
) -> tuple[float, int, dict[str, int]]:
    """Seconds, alerts and counters of one run."""
    from fraudstream.common import WatermarkStrategy
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.tutorial import build_tutorial_job

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism).set_worker_processes(workers)
    source: Source[Any] = (
        PartitionedSource(data, parallelism) if inherited else ColumnSource(data, parallelism)
    )
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx")
    build_tutorial_job(stream).sink_to(CountingSink()).uid("alerts")
    started = time.perf_counter()
    result = env.execute("bench-parallel")
    elapsed = time.perf_counter() - started
    counters = result.get_all_accumulator_results()
    return elapsed, counters["alerts.records_in"], counters


def run_generated(events: int, parallelism: int, workers: int) -> tuple[float, int]:
    """Seconds and alerts of the tutorial job as ``fraudstream job tutorial`` runs it.

    The source is ``generator:count=N``: the generator makes the transactions (as the
    tutorial's ``TransactionSource`` does), and a map turns them into its tuples.
    """
    import argparse

    from fraudstream.common.configuration import Configuration
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.tutorial import cli_job
    from fraudstream.runtime.gcscope import CONFIG_KEY

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism).set_worker_processes(workers)
    env.configure(Configuration().set_boolean(CONFIG_KEY, True))  # as `fraudstream job` does
    options = argparse.Namespace(source=f"generator:count={events},seed=7")
    cli_job(env, options).sink_to(CountingSink()).uid("alerts")
    started = time.perf_counter()
    result = env.execute("bench-parallel-generated")
    elapsed = time.perf_counter() - started
    return elapsed, result.get_all_accumulator_results()["alerts.records_in"]


def _spin(count: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(count):
        total += i
    return time.perf_counter() - started


def per_record_costs(data: list[Any]) -> dict[str, float]:
    """Nanoseconds per record of the job and of the pieces of a crossing, one process.

    ``job``: the whole tutorial job at parallelism 1 (the work to spread); ``key_by``:
    routing a batch by key group to 2 instances; ``pickle`` and ``transport``: a batch of
    1024 records encoded and decoded, by pickle and by the workers' encoding; ``crossing``:
    the same batch from one worker's outbox through a pipe into another's inbox. The
    records are new tuples, as a reader makes them (tuples that other references share
    cost the encoders more). Best of 5.
    """
    import pickle

    from fraudstream.runtime.exchange import ExchangeOutput
    from fraudstream.runtime.workers.pipes import Mesh
    from fraudstream.runtime.workers.transport import DATA, Inbox, Outbox, decode, encode

    class Drop:
        def push(self, values: list[Any], timestamps: Any) -> None:
            pass

    sample = data[:200_000]
    source = ColumnSource(sample)
    exchange = ExchangeOutput([Drop(), Drop()], "hash", lambda t: t[0], 128, 0)
    mesh = Mesh(2)
    inbox = Inbox(mesh.readers(1))
    outbox = Outbox(mesh.writers(0), Inbox(mesh.readers(0)))

    def cross(batch: list[Any]) -> None:
        outbox.add(1, (DATA, (0, 0, 0), batch, None), len(batch))
        outbox.flush()
        while inbox.get(None) is None:
            pass

    def best(step: Any) -> float:
        times = []
        for _ in range(5):
            reader = source.create_reader(0, 1)
            took = 0.0
            while (batch := reader.poll(1024)) is not None:
                started = time.perf_counter()  # each batch fresh from the reader, as in a job
                step(batch)
                took += time.perf_counter() - started
            times.append(took)
        return min(times) / len(sample) * 1e9

    try:
        job = min(run(sample, 1, 1)[0] for _ in range(3)) / len(sample) * 1e9
        return {
            "job": job,
            "key_by": best(lambda b: exchange.push(b, None)),
            "pickle": best(lambda b: pickle.loads(pickle.dumps(b, pickle.HIGHEST_PROTOCOL))),
            "transport": best(lambda b: decode(encode([b]))),
            "crossing": best(cross),
        }
    finally:
        mesh.close()


def one_core_work(data: list[Any], repeat: int = 3) -> tuple[float, float]:
    """CPU nanoseconds per record of parallelism 1, and of both workers of parallelism 2
    run in turn, round by round, in this process (best of ``repeat`` each).

    Twice the first over the second is the speed-up two idle cores would give at best.
    It counts CPU time, not the time other programs held the cores, so it is steadier
    than wall-clock ratios on a busy machine; contention for caches still moves it.
    """
    from fraudstream.common import WatermarkStrategy
    from fraudstream.datastream import StreamExecutionEnvironment
    from fraudstream.fraud.tutorial import build_tutorial_job

    def runner(source: Source[Any], parallelism: int) -> Any:
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism).set_worker_processes(1)
        stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "tx")
        build_tutorial_job(stream).sink_to(CountingSink()).uid("alerts")
        return env._runner(env._take_nodes(), "bench-one-core")

    def parallel_one(source: Source[Any]) -> float:
        job = runner(source, 1)
        started = time.process_time()
        job.run()
        return time.process_time() - started

    def parallel_two(source: Source[Any]) -> float:
        runners = [runner(source, 2) for _ in range(2)]
        started = time.process_time()
        run_workers_in_turn(runners)
        return time.process_time() - started

    one, two = ColumnSource(data, 1), ColumnSource(data, 2)
    # As in forked workers (the coordinator freezes what they inherit), the collector
    # leaves the benchmark's own data alone.
    gc.collect()
    gc.freeze()
    try:
        first = min(parallel_one(one) for _ in range(repeat))
        second = min(parallel_two(two) for _ in range(repeat))
    finally:
        gc.unfreeze()
    return first / len(data) * 1e9, second / len(data) * 1e9


def cpu_ceiling(count: int = 10_000_000) -> float:
    """How much faster 2 processes run a pure Python loop than 1, on this machine now.

    The bound for any 2-process speed-up in the same run: below 2 when the cores are
    hyperthreads, shared, or busy with other work.
    """
    import multiprocessing

    alone = _spin(count)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.perf_counter()
        pool.map(_spin, [count, count])
        both = time.perf_counter() - started
    return 2 * alone / both


def bytewax_scaling(events: int, repeat: int) -> list[dict[str, Any]] | None:
    """Bytewax running the same detector in 1 and in 2 processes (``peers/``), or
    ``None`` when Bytewax is not installed."""
    try:
        import bytewax  # noqa: F401
    except ImportError:
        print("bytewax not installed: skipped (./dev bench installs it)", file=sys.stderr)
        return None
    peer = Path(__file__).resolve().parent / "peers" / "bytewax_parallel.py"
    rows: list[dict[str, Any]] = []
    for processes in (1, 2):
        command = [sys.executable, str(peer), "--events", str(events)]
        done = subprocess.run(
            [*command, "--processes", str(processes), "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"the Bytewax peer failed:\n{done.stderr[-2000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(
            {
                "name": f"Bytewax 0.21, {processes} process{'es' if processes > 1 else ''}",
                "events_per_s": events / report["seconds"],
                "alerts": report["alerts"],
            }
        )
    if rows[0]["alerts"] != rows[1]["alerts"]:
        raise SystemExit(f"MISMATCH: Bytewax found {rows[0]['alerts']} and {rows[1]['alerts']}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the results as JSON to this file")
    parser.add_argument(
        "--inherited",
        action="store_true",
        help="readers read tuples the parent built (measures copy-on-write after fork too)",
    )
    parser.add_argument(
        "--peers", action="store_true", help="also run Bytewax in 1 and 2 processes"
    )
    parser.add_argument(
        "--peer-events",
        type=int,
        default=1_000_000,
        help="events for the Bytewax runs (default 1,000,000: it is ~20x slower)",
    )
    args = parser.parse_args()
    data = tutorial_transactions(args.events)
    configurations = [
        ("parallelism 1, 1 process", 1, 1),
        ("parallelism 2, 1 process", 2, 1),
        ("parallelism 2, 2 processes", 2, 2),
    ]
    rows = []
    expected = None
    for name, parallelism, workers in configurations:
        best = float("inf")
        for _ in range(args.repeat):
            elapsed, alerts, counters = run(data, parallelism, workers, args.inherited)
            best = min(best, elapsed)
            if expected is None:
                expected = alerts
            if alerts != expected:
                print(f"MISMATCH: {name} found {alerts} alerts, expected {expected}")
                return 1
        crossed = sum(v for k, v in counters.items() if k.endswith(".bytes_sent"))
        idle = [v for k, v in sorted(counters.items()) if k.endswith(".idle_ms")]
        rows.append(
            {
                "name": name,
                "events_per_s": args.events / best,
                "seconds": best,
                "bytes_between_workers": crossed,
                "workers_idle_ms": idle,
            }
        )
    generated = []
    expected_generated = None
    for name, parallelism, workers in (configurations[0], configurations[2]):
        best = float("inf")
        for _ in range(args.repeat):
            elapsed, alerts = run_generated(args.events, parallelism, workers)
            best = min(best, elapsed)
            expected_generated = alerts if expected_generated is None else expected_generated
            if alerts != expected_generated:
                print(f"MISMATCH: generated, {name} found {alerts} alerts")
                return 1
        generated.append({"name": name, "events_per_s": args.events / best, "seconds": best})
    base = rows[0]["events_per_s"]
    ceiling = cpu_ceiling()
    load = os.getloadavg()[0]
    reading = "tuples inherited from the parent" if args.inherited else "columns"
    print(
        f"tutorial job, {args.events:,} events, {os.cpu_count()} cores, best of {args.repeat}, "
        f"readers read {reading}"
    )
    print(
        f"machine ceiling: a pure Python loop runs {ceiling:.2f}x faster in 2 processes "
        f"than in 1 (load average {load:.1f})"
    )
    costs = per_record_costs(data)
    print(
        "ns per record: job at p=1 {job:.0f}, key_by routing {key_by:.0f}, encode+decode "
        "pickle {pickle:.0f} / workers' encoding {transport:.0f}, crossing (outbox, pipe, "
        "inbox) {crossing:.0f}".format(**costs)
    )
    alone, both = one_core_work(data, args.repeat)
    costs["one_core_p1"], costs["one_core_p2"] = alone, both
    print(
        f"work on one core, ns per record: p=1 {alone:.0f}, both workers of p=2 {both:.0f} "
        f"(so 2 idle cores give p=2 at most {2 * alone / both:.2f}x p=1)"
    )
    print(
        f"{'configuration':<30}{'events/s':>14}{'x p=1':>8}{'MB crossed':>12}"
        f"{'  workers idle (ms, last run)'}"
    )
    for row in rows:
        row["ratio"] = row["events_per_s"] / base
        print(
            f"{row['name']:<30}{row['events_per_s']:>14,.0f}{row['ratio']:>8.2f}"
            f"{row['bytes_between_workers'] / 1e6:>12.1f}  "
            + (" / ".join(str(ms) for ms in row["workers_idle_ms"]) or "-")
        )
    print(
        "the tutorial job as `fraudstream job tutorial --source generator` runs it "
        "(generator -> map -> key_by -> FraudDetector):"
    )
    for row in generated:
        row["ratio"] = row["events_per_s"] / generated[0]["events_per_s"]
        print(f"{row['name']:<30}{row['events_per_s']:>14,.0f}{row['ratio']:>8.2f}")
    peers = bytewax_scaling(args.peer_events, args.repeat) if args.peers else None
    if peers and args.peer_events == args.events and peers[0]["alerts"] != expected:
        print(f"MISMATCH: Bytewax found {peers[0]['alerts']} alerts, fraudstream {expected}")
        return 1
    if peers:
        print(
            f"Bytewax with the same detector over the first {args.peer_events:,} events, "
            "the same split (cluster members over 127.0.0.1, from their start to the last end):"
        )
        for row in peers:
            row["ratio"] = row["events_per_s"] / peers[0]["events_per_s"]
            print(f"{row['name']:<30}{row['events_per_s']:>14,.0f}{row['ratio']:>8.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "events": args.events,
                    "inherited": args.inherited,
                    "alerts": expected,
                    "cpu_ceiling": ceiling,
                    "ns_per_record": costs,
                    "load_average": load,
                    "rows": rows,
                    "generated": generated,
                    "bytewax": peers,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
