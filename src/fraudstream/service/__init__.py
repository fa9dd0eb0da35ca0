"""The demo as a product: REST + WebSocket service and the browser UI.

:func:`create_app` builds the ASGI app around a :class:`DemoEngine`, which runs the rules
job in the same process.
"""

from __future__ import annotations

from fraudstream.service.app import create_app
from fraudstream.service.engine import DemoEngine

__all__ = ["DemoEngine", "create_app"]
