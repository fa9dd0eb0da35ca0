"""Connector interfaces, as in ``pyflink.datastream.connectors``.

Implementations live in :mod:`fraudstream.connectors`.
"""

from __future__ import annotations

from fraudstream.connectors.base import Sink, Source

__all__ = ["Sink", "Source"]
