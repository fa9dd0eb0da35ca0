# mypy: disallow-subclassing-any=False
"""The parallel benchmark's Bytewax peer: the tutorial detector in 1 or 2 processes.

    python bench/peers/bytewax_parallel.py --events 1000000 --processes 2

Run by ``bench/parallel.py --peers``. Each process is a Bytewax cluster member
(``bytewax.testing.cluster_main``, one worker per process, the members talking over
127.0.0.1). Its source reads its share of the same ``(account_id, timestamp, amount)``
tuples as the other engines (``_data.py``), split by ``account % processes`` as
``bench/parallel.py`` splits them, in batches of 1,000; ``key_on`` then sends about half
of each member's records to the other one, as fraudstream's ``key_by`` does. Prints one
JSON line: events, seconds (from the moment the members start their dataflow to the
last one's end, data already built) and alerts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import bytewax_detect, tutorial_transactions

BATCH = 1000


def _member(events: int, addresses: list[str], index: int, start: Any, results: Any) -> None:
    """One cluster member: build its share, wait for the others, run, report."""
    import importlib

    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.inputs import DynamicSource, StatelessSourcePartition

    cluster_main = importlib.import_module("bytewax.testing").cluster_main  # untyped

    count = len(addresses)
    mine = [t for t in tutorial_transactions(events) if t[0] % count == index]

    class Share(StatelessSourcePartition[tuple[int, int, float]]):
        def __init__(self) -> None:
            self.position = 0

        def next_batch(self) -> Iterable[tuple[int, int, float]]:
            if self.position >= len(mine):
                raise StopIteration
            batch = mine[self.position : self.position + BATCH]
            self.position += BATCH
            return batch

    class Source(DynamicSource[tuple[int, int, float]]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> Share:
            return Share()

    alerts = [0]

    def tally(step: str, item: Any) -> None:
        alerts[0] += item[1]

    flow = Dataflow("tutorial")
    keyed = op.key_on("key", op.input("in", flow, Source()), lambda t: str(t[0]))
    op.inspect("count", op.stateful_map("detect", keyed, bytewax_detect), tally)
    start.wait()
    began = time.time()
    cluster_main(flow, addresses, index)
    results.put((began, time.time(), alerts[0]))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run(events: int, processes: int) -> tuple[float, int]:
    """(seconds, alerts) of one run in ``processes`` cluster members."""
    context = multiprocessing.get_context("spawn")
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(processes)]
    start = context.Barrier(processes)
    results = context.Queue()
    members = [
        context.Process(target=_member, args=(events, addresses, i, start, results))
        for i in range(processes)
    ]
    for member in members:
        member.start()
    reports = [results.get(timeout=1800) for _ in members]
    for member in members:
        member.join(timeout=60)
    began = min(r[0] for r in reports)
    ended = max(r[1] for r in reports)
    return ended - began, sum(r[2] for r in reports)


def main() -> None:
    """Print one JSON line with the best of ``--repeat`` runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    best, alerts = min(run(args.events, args.processes) for _ in range(args.repeat))
    print(json.dumps({"events": args.events, "seconds": best, "alerts": alerts}))


if __name__ == "__main__":
    main()
