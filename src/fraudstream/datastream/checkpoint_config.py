"""``CheckpointConfig``: where and how checkpoints are kept."""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = ["CheckpointConfig", "CheckpointingMode"]


class CheckpointingMode(Enum):
    """Checkpoint guarantee; fraudstream always aligns barriers (exactly once)."""

    EXACTLY_ONCE = 0
    AT_LEAST_ONCE = 1


class CheckpointConfig:
    """Checkpoint storage directory, retention and timeouts."""

    def __init__(self) -> None:
        self.storage_dir: str | None = None
        self.retained = 3
        self.timeout_ms = 600_000
        self.min_pause_ms = 0

    def set_checkpoint_storage_dir(self, checkpoint_path: str) -> CheckpointConfig:
        """Directory for checkpoints (a ``file://`` URI or a path)."""
        path = str(checkpoint_path)
        self.storage_dir = path[len("file://") :] if path.startswith("file://") else path
        return self

    def get_checkpoint_storage_dir(self) -> str | None:
        """The checkpoint directory."""
        return self.storage_dir

    def set_max_retained_checkpoints(self, count: int) -> CheckpointConfig:
        """How many complete checkpoints to keep (fraudstream extension; default 3)."""
        if count < 1:
            raise ValueError(f"must retain at least one checkpoint, got {count}")
        self.retained = count
        return self

    def set_checkpoint_timeout(self, checkpoint_timeout: int) -> CheckpointConfig:
        """Give up on a checkpoint after this many ms."""
        self.timeout_ms = checkpoint_timeout
        return self

    def set_min_pause_between_checkpoints(
        self, min_pause_between_checkpoints: int
    ) -> CheckpointConfig:
        """At least this many ms from the end of a checkpoint to the start of the next.

        Checkpoints are also never closer than the last one took (they pause the job).
        """
        if min_pause_between_checkpoints < 0:
            raise ValueError(f"min pause must be >= 0 ms, got {min_pause_between_checkpoints}")
        self.min_pause_ms = int(min_pause_between_checkpoints)
        return self

    def get_min_pause_between_checkpoints(self) -> int:
        """The minimum pause between checkpoints, in ms."""
        return self.min_pause_ms

    def _accept(self, *args: Any, **kwargs: Any) -> CheckpointConfig:
        return self

    set_checkpointing_mode = _accept
    set_max_concurrent_checkpoints = set_tolerable_checkpoint_failure_number = _accept
    enable_unaligned_checkpoints = disable_unaligned_checkpoints = _accept
    set_externalized_checkpoint_retention = enable_externalized_checkpoints = _accept
