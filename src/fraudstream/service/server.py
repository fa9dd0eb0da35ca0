"""How uvicorn serves the demo's app: one configuration for the commands and the tests.

WebSocket messages go out uncompressed. With per-message deflate (uvicorn's default, and
every browser asks for it) each message is compressed once *per client*, because every
connection keeps its own compression context: with a hundred clients that was about 60 %
of the web thread's CPU, and the web thread shares the interpreter lock with the engine.
The messages are JSON batches (tens of kB at most, a few per second) on a local or LAN
link, so compression would save little bandwidth for a cost that grows with every client.

Each connection's kernel send buffer is capped (:data:`SEND_BUFFER_BYTES`). Left to
itself, Linux grows it up to ``net.ipv4.tcp_wmem``'s maximum (4 MB by default) for a
client that does not read: megabytes of memory per stuck browser, and a slow browser
shown data tens of seconds old before the hub starts dropping for it. With the cap, what
one client can hold on the server is bounded by: this buffer, uvicorn's write buffer
(64 kB before it stops writing) and the hub's per-client queue (``queue_size`` messages).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

__all__ = ["SEND_BUFFER_BYTES", "tune_listening_socket", "uvicorn_config"]

#: Kernel send buffer asked for each accepted connection (Linux doubles it for its own
#: bookkeeping): a few seconds of the demo's streams for one browser.
SEND_BUFFER_BYTES = 128 * 1024


def tune_listening_socket(sock: socket.socket) -> None:
    """Options that the connections accepted on ``sock`` inherit (set before ``bind``)."""
    # Small responses on a kept-alive connection must not wait for the browser's delayed
    # ACK (~40 ms each).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration for ``app``; ``options`` override the defaults below."""
    settings: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "on",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)
