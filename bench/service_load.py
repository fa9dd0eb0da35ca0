"""The demo service under WebSocket load: does a crowd of browsers slow the engine?

    ./dev bench service_load [--clients 100] [--stuck 30] [--rate 10000] [--seconds 30]
                             [--repeat 3] [--gc-off]

Runs of the same demo (engine + generator at ``--rate`` tx/s + the four demo rules + web
app on 127.0.0.1) over the same ``--seconds`` of engine work: *quiet* runs without
WebSocket clients, *loaded* runs with ``--clients`` clients in a separate process, ``--stuck``
of which complete the handshake and never read again. Every run is a fresh process, so no
run inherits another's heap, threads or sockets; quiet and loaded runs alternate
(quiet-loaded, loaded-quiet, ...) so that a drifting machine hits both alike.

Printed per run: engine events/s, event-to-alert latency p50/p99 (ms; up to 1 ms over
the truth, as the events carry whole-millisecond stamps), CPU seconds of the engine thread
and of the web thread (the two share the interpreter lock; also without the garbage
collections each ran), garbage-collection pauses, memory, WebSocket messages sent and
items dropped, the largest per-client backlog and the load average; then the medians of
the loaded/quiet ratios and the spread between repeats.

Diagnoses: ``--gc-off`` disables the cyclic garbage collector during the measured seconds
(how much of the latency is GC); ``--deflate`` turns per-message compression on, as
uvicorn has it by default (what it costs); ``--stream-interval`` changes how often each
stream sends (how much the message count matters).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import multiprocessing
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _service_probe import GcPauses, ThreadClock, engine_thread, load_average, rss_mb
from fraudstream.service import DemoEngine, create_app
from fraudstream.service.metrics import LatencyWindow
from service_server import LiveServer, stuck_websocket

TOKEN = "bench-token"
STREAMS = ("transactions", "alerts", "latency")
_SPAWN = multiprocessing.get_context("spawn")


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


@dataclass(frozen=True)
class Setup:
    """What a run runs: the generator's rate, the measured seconds, the WebSocket clients."""

    rate: float
    seconds: float
    clients: int = 0
    stuck: int = 0
    gc_off: bool = False  # no cyclic garbage collection while measuring (a diagnosis)
    deflate: bool = False  # per-message deflate on, as uvicorn has it by default
    stream_interval: float = 0.25  # seconds between two messages of a stream, as in the demo

    def quiet(self) -> Setup:
        """The same run without clients."""
        return dataclasses.replace(self, clients=0, stuck=0)


@dataclass
class RunResult:
    """What one run measured (all CPU and latency over the measured seconds only)."""

    clients: int
    stuck: int
    seconds: float
    events_per_s: float
    alert_p50_ms: float
    alert_p99_ms: float
    alerts: int
    engine_cpu_s: float
    web_cpu_s: float
    engine_own_cpu_s: float
    web_own_cpu_s: float
    process_cpu_s: float
    gc_pauses: int
    gc_full: int
    gc_total_ms: float
    gc_max_ms: float
    peak_rss_mb: float
    rss_growth_mb: float
    ws_connected: int
    ws_sent: int
    ws_dropped: int
    max_backlog: int
    queue_size: int
    load_before: float
    load_after: float
    clients_cpu_s: float = 0.0  # the client process, over its whole life (it shares the cores)

    @property
    def web_cpu_share(self) -> float:
        """The web thread's CPU time over the engine thread's, both less the garbage
        collections they happened to run (which collect mostly the engine's state)."""
        return self.web_own_cpu_s / self.engine_own_cpu_s if self.engine_own_cpu_s else 0.0


def _start_clients(port: int, clients: int, stuck: int) -> tuple[Any, Event]:
    ready, stop = _SPAWN.Event(), _SPAWN.Event()
    process = _SPAWN.Process(
        target=_clients_main, args=(port, clients - stuck, stuck, ready, stop), daemon=True
    )
    process.start()
    if not ready.wait(60):
        raise RuntimeError("the WebSocket clients did not start")
    return process, stop


def run(setup: Setup) -> RunResult:
    """One run in this process: the demo at ``rate`` tx/s, measured over ``seconds`` of work."""
    engine = DemoEngine(rate=setup.rate, stream_interval=setup.stream_interval)
    app = create_app(engine, TOKEN)
    with LiveServer(app, ws_per_message_deflate=setup.deflate) as server:
        _wait(lambda: engine.events.total > 2 * setup.rate, 30, "the engine to warm up")
        process, stop = (
            _start_clients(server.port, setup.clients, setup.stuck)
            if setup.clients
            else (None, None)
        )
        _wait(
            lambda: sum(h.subscriber_count for h in engine.hubs()) >= setup.clients,
            60,
            f"{setup.clients} WebSocket clients to connect",
        )
        engine.alert_latency = LatencyWindow(capacity=2_000_000)
        result = _measure(engine, server, setup)
        if process is not None and stop is not None:
            stop.set()
            process.join(30)
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            result.clients_cpu_s = usage.ru_utime + usage.ru_stime
        return result


def _measure(engine: DemoEngine, server: LiveServer, setup: Setup) -> RunResult:
    """Measure until the engine has done ``rate * seconds`` events (or 3x the time passed)."""
    load_before = load_average()
    engine_cpu, web_cpu = ThreadClock(engine_thread()), ThreadClock(server.thread)
    process_cpu = time.process_time()
    rss_start = peak = rss_mb()
    events_start, alerts_start = engine.events.total, engine.alerts.total
    sent_start = sum(h.sent for h in engine.hubs())
    max_backlog = 0
    if setup.gc_off:
        gc.disable()
    with GcPauses() as pauses:
        started = time.monotonic()
        target = events_start + setup.rate * setup.seconds
        deadline = started + setup.seconds * 3
        while engine.events.total < target and time.monotonic() < deadline:
            time.sleep(0.1)
            peak = max(peak, rss_mb())
            max_backlog = max([max_backlog, *(h.max_backlog for h in engine.hubs())])
        elapsed = time.monotonic() - started
        engine_s, web_s = engine_cpu.seconds(), web_cpu.seconds()
        engine_own_s, web_own_s = (
            engine_cpu.seconds_besides(pauses),
            web_cpu.seconds_besides(pauses),
        )
        process_s = time.process_time() - process_cpu
    gc.enable()
    p50, p99 = engine.alert_latency.percentiles(0.5, 0.99)
    return RunResult(
        clients=setup.clients,
        stuck=setup.stuck,
        seconds=elapsed,
        events_per_s=(engine.events.total - events_start) / elapsed,
        alert_p50_ms=float(p50 or 0.0),
        alert_p99_ms=float(p99 or 0.0),
        alerts=engine.alerts.total - alerts_start,
        engine_cpu_s=engine_s,
        web_cpu_s=web_s,
        engine_own_cpu_s=engine_own_s,
        web_own_cpu_s=web_own_s,
        process_cpu_s=process_s,
        gc_pauses=pauses.count,
        gc_full=pauses.oldest_generation,
        gc_total_ms=pauses.total_ms,
        gc_max_ms=pauses.max_ms,
        peak_rss_mb=peak,
        rss_growth_mb=peak - rss_start,
        ws_connected=sum(h.subscriber_count for h in engine.hubs()),
        ws_sent=sum(h.sent for h in engine.hubs()) - sent_start,
        ws_dropped=sum(h.dropped for h in engine.hubs()),
        max_backlog=max_backlog,
        queue_size=max(h.queue_size for h in engine.hubs()),
        load_before=load_before,
        load_after=load_average(),
    )


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _child(conn: Connection, setup: Setup) -> None:
    try:
        conn.send(("ok", dataclasses.asdict(run(setup))))
    except BaseException as exc:  # the parent re-raises it
        conn.send(("error", repr(exc)))
        raise


def run_fresh(setup: Setup) -> RunResult:
    """:func:`run` in a new process, so that no earlier run's heap or threads are around."""
    parent, child = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=_child, args=(child, setup))
    process.start()
    child.close()
    try:
        status, value = parent.recv()
    except EOFError:
        status, value = "error", f"the run's process died (exit code {process.exitcode})"
    process.join(60)
    if status != "ok":
        raise RuntimeError(f"run {setup} failed: {value}")
    return RunResult(**value)


def compare(setup: Setup, *, loaded_first: bool = False) -> tuple[RunResult, RunResult]:
    """A quiet run and a loaded run of ``setup``, each in a fresh process, in the order asked."""
    if loaded_first:
        loaded = run_fresh(setup)
        return run_fresh(setup.quiet()), loaded
    quiet = run_fresh(setup.quiet())
    return quiet, run_fresh(setup)


def _row(name: str, r: RunResult) -> str:
    return (
        f"| {name} | {r.events_per_s:,.0f} | {r.alert_p50_ms:.2f} | {r.alert_p99_ms:.2f} | "
        f"{r.alerts:,} | {r.engine_cpu_s:.2f} ({r.engine_own_cpu_s:.2f}) | "
        f"{r.web_cpu_s:.2f} ({r.web_own_cpu_s:.2f}, {r.web_cpu_share:.1%}) | "
        f"{r.gc_pauses} / {r.gc_full} / {r.gc_total_ms:.0f} / {r.gc_max_ms:.1f} | "
        f"{r.peak_rss_mb:.0f} (+{r.rss_growth_mb:.1f}) | {r.ws_connected} | {r.ws_sent:,} | "
        f"{r.ws_dropped:,} | {r.max_backlog}/{r.queue_size} | "
        f"{r.clients_cpu_s:.1f} | {r.load_before:.2f}-{r.load_after:.2f} |"
    )


def report(quiet: RunResult, loaded: RunResult) -> str:
    """A table of a quiet and a loaded run and their ratios."""
    rows = [
        "| run | events/s | alert p50 ms | alert p99 ms | alerts | engine CPU s (w/o GC) "
        "| web CPU s (w/o GC, / engine's) | GC pauses / full / total ms / max ms | RSS MB (growth) "
        "| WS clients | WS messages sent | WS items dropped | max backlog/queue "
        "| clients' CPU s | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        _row("no clients", quiet),
        _row(f"{loaded.clients} clients, {loaded.stuck} stuck", loaded),
    ]
    ratios = Ratios.of(quiet, loaded)
    rows.append(
        f"with clients / without: throughput {ratios.throughput:.3f}, alert p50 "
        f"{ratios.p50:.3f}, alert p99 {ratios.p99:.3f}"
    )
    return "\n".join(rows)


@dataclass
class Ratios:
    """Loaded over quiet: throughput, alert latency p50 and p99 (1.0: no difference)."""

    throughput: float
    p50: float
    p99: float

    @classmethod
    def of(cls, quiet: RunResult, loaded: RunResult) -> Ratios:
        """The ratios of one pair."""
        return cls(
            throughput=loaded.events_per_s / quiet.events_per_s,
            p50=_ratio(loaded.alert_p50_ms, quiet.alert_p50_ms),
            p99=_ratio(loaded.alert_p99_ms, quiet.alert_p99_ms),
        )


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf") if a else 1.0


def summary(pairs: list[tuple[RunResult, RunResult]]) -> str:
    """Medians of the pairs' ratios and the spread of each configuration between repeats."""
    ratios = [Ratios.of(quiet, loaded) for quiet, loaded in pairs]
    lines = [
        f"median over {len(pairs)} pairs, with clients / without: "
        f"throughput {statistics.median(r.throughput for r in ratios):.3f}, "
        f"alert p50 {statistics.median(r.p50 for r in ratios):.3f}, "
        f"alert p99 {statistics.median(r.p99 for r in ratios):.3f}"
    ]
    for index, name in ((0, "no clients"), (1, "with clients")):
        runs = [pair[index] for pair in pairs]
        lines.append(
            f"spread {name}: events/s {_spread([r.events_per_s for r in runs], ',.0f')}, "
            f"p50 ms {_spread([r.alert_p50_ms for r in runs], '.2f')}, "
            f"p99 ms {_spread([r.alert_p99_ms for r in runs], '.2f')}, "
            f"web CPU s {_spread([r.web_cpu_s for r in runs], '.2f')}, "
            f"GC max ms {_spread([r.gc_max_ms for r in runs], '.1f')}"
        )
    loads = [r.load_before for pair in pairs for r in pair]
    lines.append(f"load average during the runs: {min(loads):.2f}-{max(loads):.2f} (2 cores)")
    return "\n".join(lines)


def _spread(values: Any, spec: str) -> str:
    ordered = sorted(values)
    return f"{format(ordered[0], spec)}-{format(ordered[-1], spec)}"


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--stuck", type=int, default=30)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=2, help="quiet/loaded pairs to run")
    parser.add_argument("--gc-off", action="store_true", help="no cyclic GC while measuring")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="WebSocket per-message deflate on (uvicorn's default)",
    )
    parser.add_argument(
        "--stream-interval", type=float, default=0.25, help="seconds between two messages"
    )
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    options = parser.parse_args()
    setup = Setup(
        rate=options.rate,
        seconds=options.seconds,
        clients=options.clients,
        stuck=options.stuck,
        gc_off=options.gc_off,
        deflate=options.deflate,
        stream_interval=options.stream_interval,
    )
    print(f"{setup}; load average {load_average():.2f} (2 cores)\n", flush=True)
    pairs = []
    for index in range(options.repeat):
        pair = compare(setup, loaded_first=index % 2 == 1)
        pairs.append(pair)
        print(report(*pair), end="\n\n", flush=True)
    print(summary(pairs))
    if options.json is not None:
        runs = [dataclasses.asdict(run) for pair in pairs for run in pair]
        options.json.write_text(json.dumps(runs, indent=1), "utf-8")


if __name__ == "__main__":
    main()
