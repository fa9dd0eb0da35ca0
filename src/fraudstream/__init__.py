"""fraudstream: real-time fraud detection on an embedded engine with the PyFlink DataStream API.

``fraudstream.activate()`` makes ``import pyflink...`` resolve to fraudstream, so an
unmodified PyFlink DataStream program runs on the embedded engine.
"""

from __future__ import annotations

from fraudstream._pyflink_alias import activate, deactivate

__version__ = "0.1.0"
__all__ = ["__version__", "activate", "deactivate"]
