"""Running the parallel instances of a job in worker processes.

:mod:`.coordinator` (in the job's process) forks one worker per parallel instance,
triggers checkpoints and publishes them once every worker acknowledged; :mod:`.worker`
runs a worker's share of the operators; :mod:`.transport` moves batches between
workers; :mod:`.alignment` aligns checkpoint barriers on operators with several inputs.
"""

from __future__ import annotations

from fraudstream.runtime.workers.coordinator import ProcessCoordinator

__all__ = ["ProcessCoordinator"]
