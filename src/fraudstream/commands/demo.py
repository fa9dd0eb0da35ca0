"""``fraudstream demo``: engine + generator + rules job + web service + UI in one process."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path
from types import FrameType

from fraudstream.commands.common import EXIT_OK
from fraudstream.exceptions import ConfigurationError

NAME = "demo"
HELP = "run the web demo (engine, generator, rules, UI) in one process"

#: Environment variable that sets the access token when ``--token`` is not given.
TOKEN_ENV = "FRAUDSTREAM_TOKEN"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/fraudstream`` (``~/.local/share/fraudstream``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fraudstream"


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``demo`` and ``serve``: where to listen and the access token."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=5656, help="port to listen on (%(default)s)")
    parser.add_argument(
        "--token",
        help=f"access token for changes and live streams (default: ${TOKEN_ENV} or random)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``demo``."""
    add_server_arguments(parser)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where rules, alert history and checkpoints are kept (default: {default_data_dir()})",
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="generator speed at start, tx/s (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (%(default)s)")
    parser.add_argument(
        "--checkpoint-interval",
        type=int,
        default=None,
        metavar="MS",
        help="take checkpoints this often, and a final one on exit (default: off)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes for the rules job's windows (0: one per core; default 1)",
    )
    parser.add_argument(
        "--kafka",
        metavar="HOST:PORT",
        help="not in embedded mode: use `fraudstream serve --kafka HOST:PORT` for a deployment",
    )


def resolve_token(options: argparse.Namespace) -> str:
    """The token from ``--token``, the environment, or a fresh random one."""
    token: str = options.token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(18)
    if not token.strip() or len(token) > 512:
        raise ConfigurationError("the access token must be 1 to 512 non-blank characters")
    return token


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a clear error when it is taken or not ours."""
    from fraudstream.service.server import tune_listening_socket

    if not 0 < port < 65536:
        raise ConfigurationError(f"port {port!r} must be between 1 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tune_listening_socket(sock)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def serve_app(app: object, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C or SIGTERM; the app's lifespan stops the engine."""
    import uvicorn

    from fraudstream.service.server import uvicorn_config

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after shutting down; the shutdown is the
            # whole point here, so the process ends normally instead.
            self._captured_signals.clear()

    Server(uvicorn_config(app, timeout_graceful_shutdown=5)).run(sockets=[sock])


def banner(url: str, token: str, lines: list[str], title: str = "fraudstream demo") -> str:
    """What the command prints at start."""
    body = [f"{title} at {url}/#token={token}", f"  access token: {token}", *lines]
    body.append("  Ctrl-C stops it.")
    return "\n".join(body)


def run(options: argparse.Namespace) -> int:
    """Start the engine and the web app; serve until interrupted."""
    from fraudstream.service import DemoEngine, create_app

    if options.kafka:
        raise ConfigurationError(
            "`fraudstream demo` runs embedded; for Kafka use `fraudstream serve --kafka HOST:PORT`"
        )
    token = resolve_token(options)
    data_dir: Path = options.data_dir or default_data_dir()
    workers = getattr(options, "workers", 1)
    if workers < 0:
        raise ConfigurationError(f"--workers must be 0 (one per core) or more, got {workers}")
    engine = DemoEngine(
        data_dir,
        rate=options.rate,
        seed=options.seed,
        checkpoint_interval_ms=options.checkpoint_interval,
        workers=workers or (os.cpu_count() or 1),
    )
    try:
        sock = listen(options.host, options.port)
    except ConfigurationError:
        engine.close()
        raise
    app = create_app(engine, token)
    try:
        url = f"http://{options.host}:{options.port}"
        print(banner(url, token, [f"  data: {data_dir}"]), flush=True)
        serve_app(app, sock)
    finally:
        sock.close()
    print("fraudstream demo stopped", file=sys.stderr)
    return EXIT_OK
