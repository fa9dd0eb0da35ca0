"""The demo service under WebSocket load: does a crowd of browsers slow the engine?

    ./dev bench service_load [--clients 100] [--stuck 30] [--rate 10000] [--seconds 30]

Two runs of the same demo (engine + generator at ``--rate`` tx/s + the four demo rules +
web app on 127.0.0.1), one after the other in this process: without WebSocket clients,
then with ``--clients`` clients in a separate process, ``--stuck`` of which complete the
handshake and never read again. Printed per run: engine events/s, event-to-alert latency
p50/p99, process memory (peak RSS) and the WebSocket messages received and dropped;
then the ratios of the loaded run to the quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fraudstream.service import DemoEngine, create_app
from fraudstream.service.metrics import LatencyWindow
from service_server import LiveServer, stuck_websocket

TOKEN = "bench-token"
STREAMS = ("transactions", "alerts", "latency")


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _read_forever(url: str, counts: list[int], index: int) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        async for _message in ws:
            counts[index] += 1


def _clients_main(port: int, reading: int, stuck: int, ready: Event, stop: Event) -> None:
    """The client process: ``reading`` clients that read everything, ``stuck`` that never do.

    It runs at a lower CPU priority: in a deployment the browsers are on other machines,
    here they share the server's cores, and the question is what *serving* them costs.
    """
    os.nice(10)
    stuck_sockets = [
        stuck_websocket(port, f"/ws/{STREAMS[i % len(STREAMS)]}?token={TOKEN}")
        for i in range(stuck)
    ]
    counts = [0] * reading

    async def main() -> None:
        tasks = [
            asyncio.create_task(
                _read_forever(
                    f"ws://127.0.0.1:{port}/ws/{STREAMS[i % len(STREAMS)]}?token={TOKEN}",
                    counts,
                    i,
                )
            )
            for i in range(reading)
        ]
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    for sock in stuck_sockets:
        sock.close()
    print(json.dumps({"received": sum(counts)}), flush=True)


@dataclass
class RunResult:
    """What one run measured."""

    clients: int
    stuck: int
    events_per_s: float
    alert_p50_ms: float
    alert_p99_ms: float
    alerts: int
    peak_rss_mb: float
    rss_growth_mb: float
    ws_dropped: int
    ws_connected: int


def run(rate: float, seconds: float, clients: int, stuck: int) -> RunResult:
    """One run of the demo at ``rate`` tx/s, measured over ``seconds`` of engine work."""
    engine = DemoEngine(rate=rate)
    with LiveServer(create_app(engine, TOKEN)) as server:
        _wait(lambda: engine.events.total > rate, 30, "the engine to warm up")
        process: Any = None
        stop: Event | None = None
        if clients:
            context = multiprocessing.get_context("spawn")
            ready, stop = context.Event(), context.Event()
            process = context.Process(
                target=_clients_main, args=(server.port, clients - stuck, stuck, ready, stop)
            )
            process.start()
            if not ready.wait(60):
                raise RuntimeError("the WebSocket clients did not start")
            _wait(
                lambda: sum(h.subscriber_count for h in engine.hubs()) >= clients,
                60,
                f"{clients} WebSocket clients to connect",
            )
        engine.alert_latency = LatencyWindow(capacity=2_000_000)
        rss_start = peak = rss_mb()
        events_start, alerts_start = engine.events.total, engine.alerts.total
        started = time.monotonic()
        target = events_start + rate * seconds
        deadline = started + seconds * 3
        while engine.events.total < target and time.monotonic() < deadline:
            time.sleep(0.1)
            peak = max(peak, rss_mb())
        elapsed = time.monotonic() - started
        events = engine.events.total - events_start
        p50, p99 = engine.alert_latency.percentiles(0.5, 0.99)
        connected = sum(h.subscriber_count for h in engine.hubs())
        dropped = sum(h.dropped for h in engine.hubs())
        if process is not None and stop is not None:
            stop.set()
            process.join(30)
        return RunResult(
            clients=clients,
            stuck=stuck,
            events_per_s=events / elapsed,
            alert_p50_ms=float(p50 or 0.0),
            alert_p99_ms=float(p99 or 0.0),
            alerts=engine.alerts.total - alerts_start,
            peak_rss_mb=peak,
            rss_growth_mb=peak - rss_start,
            ws_dropped=dropped,
            ws_connected=connected,
        )


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def compare(rate: float, seconds: float, clients: int, stuck: int) -> tuple[RunResult, RunResult]:
    """The quiet run and the loaded run.

    Each run starts after a full garbage collection, so that freeing the previous run's
    engine state (windows of millions of transactions) does not land in the next run.
    """
    gc.collect()
    quiet = run(rate, seconds, 0, 0)
    gc.collect()
    loaded = run(rate, seconds, clients, stuck)
    return quiet, loaded


def compare_repeatedly(
    rate: float, seconds: float, clients: int, stuck: int, repeat: int
) -> list[tuple[RunResult, RunResult]]:
    """``repeat`` quiet/loaded pairs, alternating, so that a noisy machine hits both alike."""
    return [compare(rate, seconds, clients, stuck) for _ in range(repeat)]


def report(quiet: RunResult, loaded: RunResult) -> str:
    """A table of both runs and their ratios."""
    rows = [
        "| run | events/s | alert p50 ms | alert p99 ms | alerts | peak RSS MB | RSS growth MB "
        "| WS clients | WS dropped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    loaded_name = f"{loaded.clients} clients, {loaded.stuck} stuck"
    for name, r in (("no clients", quiet), (loaded_name, loaded)):
        rows.append(
            f"| {name} | {r.events_per_s:,.0f} | {r.alert_p50_ms:.1f} | {r.alert_p99_ms:.1f} | "
            f"{r.alerts:,} | {r.peak_rss_mb:.0f} | {r.rss_growth_mb:.1f} | {r.ws_connected} | "
            f"{r.ws_dropped:,} |"
        )
    ratio = loaded.events_per_s / quiet.events_per_s
    rows.append(
        f"\nthroughput with clients / without: {ratio:.3f}; alert p99 with / without: "
        f"{loaded.alert_p99_ms:.1f} / {quiet.alert_p99_ms:.1f} ms"
    )
    return "\n".join(rows)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--stuck", type=int, default=30)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=1, help="quiet/loaded pairs to run")
    options = parser.parse_args()
    pairs = compare_repeatedly(
        options.rate, options.seconds, options.clients, options.stuck, options.repeat
    )
    for quiet, loaded in pairs:
        print(report(quiet, loaded), flush=True)
    if len(pairs) > 1:
        ratios = sorted(loaded.events_per_s / quiet.events_per_s for quiet, loaded in pairs)
        print(f"\nmedian throughput ratio over {len(pairs)} pairs: {ratios[len(ratios) // 2]:.3f}")


if __name__ == "__main__":
    main()
