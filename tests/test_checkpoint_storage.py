"""Checkpoint storage: which snapshot ``latest`` restores, damaged metadata, the directory claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fraudstream.exceptions import CheckpointError
from fraudstream.runtime.checkpoints import CheckpointStorage, DirectoryClaim


def snap(n: int) -> dict[str, Any]:
    """A snapshot payload as a job writes one (its operators' states), marked ``n``."""
    return {"operators": {"op": [n]}, "n": n}


def test_a_savepoint_newer_than_every_checkpoint_is_latest(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, snap(1))
    storage.write(2, snap(2))
    storage.write(3, snap(3), savepoint=True)
    latest = storage.latest()
    assert latest is not None
    assert (latest.checkpoint_id, latest.payload) == (3, snap(3))
    assert latest.path.name == "savepoint-3"
    assert storage.next_id() == 4  # ids continue after the savepoint


def test_a_checkpoint_after_a_savepoint_is_latest(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, snap(1), savepoint=True)
    storage.write(2, snap(2))
    latest = storage.latest()
    assert latest is not None and latest.payload == snap(2)


def test_a_damaged_savepoint_falls_back_to_the_newest_checkpoint(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, snap(1))
    damaged = storage.write(2, snap(2), savepoint=True)
    state = next(p for p in damaged.iterdir() if not p.name.startswith("_"))
    state.write_bytes(state.read_bytes()[:-1])
    with pytest.warns(RuntimeWarning, match="falling back"):
        latest = storage.latest()
    assert latest is not None and latest.payload == snap(1)


@pytest.mark.parametrize(
    "metadata",
    [
        [],
        None,
        "chk",
        {"size": 1},
        {"checkpoint_id": "abc"},
        {"checkpoint_id": True},
        {"checkpoint_id": -1},
        {"checkpoint_id": 2, "files": []},
        {"checkpoint_id": 2, "files": {"keyed.kv": 5}},
        {"checkpoint_id": 2, "files": {"../../outside": {"size": 1, "sha256": "00"}}},
    ],
)
def test_damaged_metadata_is_a_clear_error_and_latest_falls_back(
    tmp_path: Path, metadata: Any
) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, snap(1))
    newest = storage.write(2, snap(2))
    meta = json.loads((newest / "_metadata").read_text())
    if isinstance(metadata, dict):
        metadata = {**meta, **metadata} if "checkpoint_id" in metadata else metadata
    (newest / "_metadata").write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match="corrupted"):
        CheckpointStorage.load(newest)
    with pytest.warns(RuntimeWarning, match="falling back"):
        latest = storage.latest()
    assert latest is not None and latest.payload == snap(1)


@pytest.mark.parametrize(
    "payload", [7, [1, 2], {"n": 1}, {"operators": [1]}, {"operators": {"a": 1}}]
)
def test_state_of_another_shape_with_a_matching_checksum_is_refused(
    tmp_path: Path, payload: Any
) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, snap(1))
    newest = storage.write(2, payload)  # written whole and checksummed: only its shape is wrong
    with pytest.raises(CheckpointError, match="not a checkpoint's"):
        CheckpointStorage.load(newest)
    with pytest.warns(RuntimeWarning, match="falling back"):
        latest = storage.latest()
    assert latest is not None and latest.payload == snap(1)


def test_a_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for unusable in (tmp_path / "a-file", tmp_path / "a-file" / "below", tmp_path / ("x" * 300)):
        with pytest.raises(CheckpointError, match="cannot be created"):
            CheckpointStorage(unusable)


def test_one_job_at_a_time_holds_a_directory(tmp_path: Path) -> None:
    first = CheckpointStorage(tmp_path).claim()
    try:
        assert DirectoryClaim.holder(tmp_path) == os.getpid()
        with pytest.raises(
            CheckpointError, match=f"in use by another running job \\(process {os.getpid()}\\)"
        ):
            CheckpointStorage(tmp_path).claim()
    finally:
        first.release()
    assert DirectoryClaim.holder(tmp_path) is None
    CheckpointStorage(tmp_path).claim().release()  # free again


def test_a_killed_holder_leaves_the_directory_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from fraudstream.runtime.checkpoints import CheckpointStorage\n"
         "claim = CheckpointStorage(sys.argv[1]).claim()\n"
         "print('held', flush=True); time.sleep(60)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert DirectoryClaim.holder(tmp_path) == holder.pid
        holder.kill()
        holder.wait(10)
        assert DirectoryClaim.holder(tmp_path) is None
        CheckpointStorage(tmp_path).claim().release()
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_process_forked_while_the_directory_is_held_does_not_keep_it(tmp_path: Path) -> None:
    claim = CheckpointStorage(tmp_path).claim()
    ready, tell = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only waits to be killed
        import time

        os.write(tell, b"up")  # after the fork hooks ran
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(ready, 2) == b"up"
        claim.release()
        assert DirectoryClaim.holder(tmp_path) is None  # the child's copy was closed
        CheckpointStorage(tmp_path).claim().release()
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
        os.close(ready)
        os.close(tell)


def test_a_claim_waits_out_a_look_at_the_holder(tmp_path: Path) -> None:
    import threading

    storage = CheckpointStorage(tmp_path)
    done = threading.Event()

    def look() -> None:
        while not done.is_set():
            DirectoryClaim.holder(tmp_path)

    looker = threading.Thread(target=look)
    looker.start()
    try:
        for _ in range(300):  # each would fail now and then if a look made it give up
            storage.claim().release()
    finally:
        done.set()
        looker.join()


def test_keyed_state_that_cannot_be_decoded_makes_latest_fall_back(tmp_path: Path) -> None:
    storage = CheckpointStorage(tmp_path)
    storage.write(1, snap(1))
    # The heap backend stores its tables pickled once; these bytes are no pickle at all
    # (as the pickle of a class since removed cannot be loaded either).
    newest = storage.write(2, {"operators": {"keyed": [{"state": b"\x80\x05gone"}]}})
    with pytest.raises(CheckpointError, match="cannot be decoded"):
        CheckpointStorage.load(newest)
    with pytest.warns(RuntimeWarning, match="falling back"):
        latest = storage.latest()
    assert latest is not None and latest.payload == snap(1)
