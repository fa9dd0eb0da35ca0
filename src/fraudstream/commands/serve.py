"""``fraudstream serve --kafka HOST:PORT``: the demo's web service for a Kafka deployment.

The rules job runs as its own process (``fraudstream job rules`` with Kafka specs, or on
Flink); this serves the same UI and API, and talks to the job through the topics
``transactions``, ``rules`` and ``alerts``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraudstream.commands.common import EXIT_OK
from fraudstream.commands.demo import (
    add_server_arguments,
    banner,
    default_data_dir,
    listen,
    resolve_token,
    serve_app,
)
from fraudstream.exceptions import ConfigurationError

NAME = "serve"
HELP = "serve the web UI and API for a rules job reached through Kafka topics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``serve``."""
    parser.add_argument("--kafka", metavar="HOST:PORT", required=True, help="the Kafka broker")
    add_server_arguments(parser)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"rules, alert history, checkpoints (default: {default_data_dir() / 'serve'})",
    )
    parser.add_argument(
        "--topic-prefix", default="", help="prefix of the topic names (default: none)"
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="generator speed at start, tx/s (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (%(default)s)")


def run(options: argparse.Namespace) -> int:
    """Start the service against the broker; serve until interrupted."""
    from fraudstream.service import create_app
    from fraudstream.service.kafka import DEFAULT_TOPICS, KafkaDemoEngine

    token = resolve_token(options)
    data_dir: Path = options.data_dir or default_data_dir() / "serve"
    prefix: str = options.topic_prefix
    if any(c.isspace() for c in prefix):
        raise ConfigurationError(f"--topic-prefix {prefix!r} must not contain spaces")
    topics = {role: prefix + name for role, name in DEFAULT_TOPICS.items()}
    engine = KafkaDemoEngine(
        options.kafka, data_dir, topics=topics, rate=options.rate, seed=options.seed
    )
    try:
        sock = listen(options.host, options.port)
    except ConfigurationError:
        engine.close()
        raise
    app = create_app(engine, token)
    try:
        url = f"http://{options.host}:{options.port}"
        lines = [
            f"  data: {data_dir}",
            f"  kafka: {options.kafka} topics "
            + ", ".join(f"{role}={topic}" for role, topic in topics.items()),
        ]
        print(banner(url, token, lines, title="fraudstream serve"), flush=True)
        serve_app(app, sock)
    finally:
        sock.close()
    print("fraudstream serve stopped", file=sys.stderr)
    return EXIT_OK
