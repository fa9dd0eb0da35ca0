"""Which snapshot ``latest`` restores when checkpoints and savepoints are both present."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.runtime.checkpoints import CheckpointStorage


def test_a_savepoint_newer_than_every_checkpoint_is_latest(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, {"n": 1})
    storage.write(2, {"n": 2})
    storage.write(3, {"n": 3}, savepoint=True)
    latest = storage.latest()
    assert latest is not None
    assert (latest.checkpoint_id, latest.payload) == (3, {"n": 3})
    assert latest.path.name == "savepoint-3"
    assert storage.next_id() == 4  # ids continue after the savepoint


def test_a_checkpoint_after_a_savepoint_is_latest(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, {"n": 1}, savepoint=True)
    storage.write(2, {"n": 2})
    latest = storage.latest()
    assert latest is not None and latest.payload == {"n": 2}


def test_a_damaged_savepoint_falls_back_to_the_newest_checkpoint(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, {"n": 1})
    damaged = storage.write(2, {"n": 2}, savepoint=True)
    state = next(p for p in damaged.iterdir() if not p.name.startswith("_"))
    state.write_bytes(state.read_bytes()[:-1])
    with pytest.warns(RuntimeWarning, match="falling back"):
        latest = storage.latest()
    assert latest is not None and latest.payload == {"n": 1}
