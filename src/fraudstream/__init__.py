"""fraudstream: real-time fraud detection on an embedded engine with the PyFlink DataStream API."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
