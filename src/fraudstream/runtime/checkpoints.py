"""Checkpoint storage: atomically published, checksummed snapshots in a directory.

Layout: ``DIR/chk-<id>/`` holds ``state.bin`` (the pickled snapshot), the state files of
on-disk backends (:class:`~fraudstream.state.files.StateFile`) and ``_metadata`` (JSON
with the SHA-256 and size of ``state.bin`` and of every state file). State files are
written to ``DIR/.staging`` while the checkpoint is taken and moved in when it is
published. A checkpoint is written to a
temporary directory and renamed into place only when complete, so a crash leaves
either a whole checkpoint or none; a checkpoint whose data does not match its
checksum is skipped with a warning, falling back to the previous complete one.

One running job at a time owns a checkpoint directory (:class:`DirectoryClaim`, a lock
on ``DIR/_lock``): two jobs writing one directory would delete each other's staged state
and mix their checkpoints and outputs.

A checkpoint holds pickled Python objects, as a Flink savepoint holds serialized ones:
restore only checkpoints you trust, since unpickling crafted data can run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import time
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudstream.exceptions import CheckpointError

try:
    import fcntl
except ImportError:  # Windows: checkpoint directories are not locked there
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # the state package imports the API, which imports the runtime
    from fraudstream.state.files import StateFile

__all__ = [
    "LOCK_FILE",
    "STAGING",
    "CheckpointStorage",
    "DirectoryClaim",
    "LoadedCheckpoint",
    "next_checkpoint_due",
    "state_files_of",
]

_STATE = "state.bin"
_META = "_metadata"
#: Directory inside the checkpoint directory where state files wait to be published.
STAGING = ".staging"
#: The file a running job holds locked in its checkpoint directory (with its process id).
LOCK_FILE = "_lock"


class DirectoryClaim:
    """A running job's exclusive claim on its checkpoint directory (``flock`` on ``_lock``).

    The lock goes with the process: a job that is killed releases it. Processes forked
    while it is held (the job's workers, or any other code's) do not keep it: their
    copy of the file is closed after the fork, so the lock ends with the job. The file
    keeps the holder's process id, for messages and for ``fraudstream savepoint``.
    Where ``fcntl`` does not exist (Windows), directories are not locked.
    """

    #: How long a claim waits for a lock held for a moment (``holder`` looking at it).
    WAIT_S = 0.2
    _held: weakref.WeakSet[DirectoryClaim] = weakref.WeakSet()
    _fork_hook = False

    def __init__(self, directory: Path) -> None:
        self._handle: Any = None
        if fcntl is None:
            return
        path = directory / LOCK_FILE
        try:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint directory {str(directory)!r} cannot be locked: {exc}"
            ) from exc
        deadline = time.monotonic() + self.WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                handle.seek(0)
                holder = handle.read().strip()
                handle.close()
                who = f" (process {holder})" if holder.isdigit() else ""
                raise CheckpointError(
                    f"checkpoint directory {str(directory)!r} is in use by another running "
                    f"job{who}: two jobs writing one directory would mix their checkpoints "
                    "and output; stop it, or give this job a directory of its own"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        DirectoryClaim._held.add(self)
        if not DirectoryClaim._fork_hook:
            os.register_at_fork(after_in_child=DirectoryClaim._forget_in_child)
            DirectoryClaim._fork_hook = True

    @staticmethod
    def _forget_in_child() -> None:
        # Closing the child's copy leaves the parent's lock as it is (flock locks belong to
        # the open file, which the parent still has open).
        for claim in list(DirectoryClaim._held):
            handle, claim._handle = claim._handle, None
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
        DirectoryClaim._held.clear()

    def release(self) -> None:
        """Give the directory up (idempotent)."""
        handle, self._handle = self._handle, None
        DirectoryClaim._held.discard(self)
        if handle is not None:
            handle.close()

    @staticmethod
    def holder(directory: str | os.PathLike[str]) -> int | None:
        """The process id of the job that holds ``directory``, or ``None`` if none does.

        Looks by taking a shared lock for a moment: a job starting meanwhile waits for it.
        """
        if fcntl is None:
            return None
        try:
            handle = open(Path(directory) / LOCK_FILE, encoding="utf-8")  # noqa: SIM115
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # held: a job runs
                text = handle.read().strip()
                return int(text) if text.isdigit() and int(text) > 1 else None
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None


def next_checkpoint_due(started: float, ended: float, interval: float, min_pause: float) -> float:
    """When the checkpoint after one taken from ``started`` to ``ended`` is due (any unit).

    Every ``interval`` from the start of the last one, as Flink counts, but no sooner than
    ``min_pause`` after its end, nor sooner than it took: checkpoints pause the job (until
    the state is copied), so one that takes longer than the interval, followed at once by
    the next, would leave the job no time for records at all.
    """
    return max(started + interval, ended + max(min_pause, ended - started))


def _keyed_snapshots(operators: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """The snapshots of keyed instances in an operator snapshot map (those with ``state``)."""
    for snapshots in operators.values():
        for snapshot in snapshots:
            if isinstance(snapshot, dict) and "state" in snapshot:
                yield snapshot


def state_files_of(operators: dict[str, list[Any]]) -> list[StateFile]:
    """The state files an operator snapshot map refers to (keyed state of disk backends)."""
    from fraudstream.state.files import StateFile

    snapshots = _keyed_snapshots(operators)
    return [s["state"] for s in snapshots if isinstance(s["state"], StateFile)]


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _checked_metadata(meta: Any, where: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """The checkpoint id and state-file entries of a ``_metadata`` object, checked."""

    def corrupted(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {str(where)!r} is corrupted: {what}")

    if not isinstance(meta, dict):
        raise corrupted("its metadata is not a JSON object")
    checkpoint_id = meta.get("checkpoint_id")
    if isinstance(checkpoint_id, bool) or not isinstance(checkpoint_id, int) or checkpoint_id < 0:
        raise corrupted(f"its metadata has no valid checkpoint_id ({checkpoint_id!r})")
    files = meta.get("files", {})
    if not isinstance(files, dict):
        raise corrupted("its metadata's files are not a JSON object")
    for name, expected in files.items():
        if (
            Path(name).name != name
            or not isinstance(expected, dict)
            or not isinstance(expected.get("size"), int)
            or not isinstance(expected.get("sha256"), str)
        ):
            raise corrupted(f"its metadata's entry for state file {name!r} is invalid")
    return checkpoint_id, files


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read back from storage."""

    checkpoint_id: int
    path: Path
    payload: dict[str, Any]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStorage:
    """Checkpoints and savepoints in a local directory (the last ``retained`` kept)."""

    def __init__(self, directory: str | os.PathLike[str], retained: int = 3) -> None:
        self.directory = Path(directory)
        self.retained = retained
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint directory {str(directory)!r} cannot be created: {exc.strerror or exc}"
            ) from exc

    def claim(self) -> DirectoryClaim:
        """Claim the directory for a running job; fails if another job holds it."""
        return DirectoryClaim(self.directory)

    def _complete_ids(self) -> list[int]:
        return sorted(number for number, _ in self._complete("chk-", self.directory))

    @staticmethod
    def _complete(prefix: str, parent: Path) -> list[tuple[int, Path]]:
        found = []
        for entry in parent.glob(f"{prefix}*"):
            suffix = entry.name[len(prefix) :]
            if suffix.isdigit() and (entry / _META).exists():
                found.append((int(suffix), entry))
        return found

    def _snapshots_newest_first(self) -> list[Path]:
        """Complete checkpoints and savepoints, newest (highest id) first.

        Checkpoints and savepoints share one id sequence, so a savepoint taken when a job
        stopped is newer than every checkpoint before it and is what ``latest`` restores.
        """
        found = self._complete("chk-", self.directory)
        found += self._complete("savepoint-", self.directory)
        return [path for _, path in sorted(found, key=lambda item: item[0], reverse=True)]

    def clear_staging(self) -> None:
        """Delete state files left behind by checkpoints that never completed."""
        shutil.rmtree(self.directory / STAGING, ignore_errors=True)

    def next_id(self, restored_id: int = 0) -> int:
        """One more than the newest checkpoint's id, and than ``restored_id``.

        A job restored from checkpoint or savepoint ``n`` numbers its checkpoints from
        ``n + 1`` on, even in a new directory (as Flink does): sinks that remember the
        last checkpoint they committed (the Kafka sink's markers) never meet an id again.
        """
        ids = [number for number, _ in self._complete("chk-", self.directory)]
        ids += [number for number, _ in self._complete("savepoint-", self.directory)]
        return max([*ids, restored_id]) + 1

    def write(
        self,
        checkpoint_id: int,
        payload: dict[str, Any],
        savepoint: bool = False,
        files: list[StateFile] | None = None,
    ) -> Path:
        """Write and atomically publish a checkpoint; returns its directory.

        ``files`` (state files written to the staging directory) are moved in.
        """
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        name = f"{'savepoint' if savepoint else 'chk'}-{checkpoint_id}"
        parent = self.directory
        final = parent / name
        temporary = parent / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        with open(temporary / _STATE, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for state_file in files or []:
            assert state_file.path is not None
            os.replace(state_file.path, temporary / state_file.name)
        meta = {
            "checkpoint_id": checkpoint_id,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "created_ms": int(time.time() * 1000),
            "savepoint": savepoint,
            "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in files or []},
        }
        with open(temporary / _META, "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(temporary)
        if final.exists():
            shutil.rmtree(final)
        os.rename(temporary, final)
        _fsync_dir(parent)
        if not savepoint:
            self._prune()
        return final

    def _prune(self) -> None:
        ids = self._complete_ids()
        for old in ids[: max(0, len(ids) - self.retained)]:
            shutil.rmtree(self.directory / f"chk-{old}", ignore_errors=True)
        for leftover in self.directory.glob(".tmp-*-*"):
            if not leftover.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(leftover, ignore_errors=True)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> LoadedCheckpoint:
        """Read and verify one checkpoint directory."""
        where = Path(path)
        try:
            meta = json.loads((where / _META).read_text(encoding="utf-8"))
            data = (where / _STATE).read_bytes()
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {str(where)!r} is unreadable: {exc}") from exc
        checkpoint_id, files = _checked_metadata(meta, where)
        if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise CheckpointError(f"checkpoint {str(where)!r} is corrupted: checksum mismatch")
        for name, expected in files.items():
            stored = where / name
            if (
                not stored.is_file()
                or stored.stat().st_size != expected["size"]
                or _sha256_of(stored) != expected["sha256"]
            ):
                raise CheckpointError(
                    f"checkpoint {str(where)!r} is corrupted: state file {name!r} is missing "
                    "or does not match its checksum"
                )
        try:
            payload = pickle.loads(data)
        except Exception as exc:
            raise CheckpointError(f"checkpoint {str(where)!r} cannot be decoded: {exc}") from exc
        operators = payload.get("operators") if isinstance(payload, dict) else None
        if not isinstance(operators, dict) or not all(
            isinstance(uid, str) and isinstance(states, list) for uid, states in operators.items()
        ):
            raise CheckpointError(
                f"checkpoint {str(where)!r} is corrupted: its state is not a checkpoint's"
            )
        for snapshot in _keyed_snapshots(operators):
            # Keyed state the heap backend pickled once: decoded here, once for every
            # instance that restores from it, and a failure (a class that is gone) is this
            # checkpoint's, so ``latest`` falls back.
            if isinstance(snapshot["state"], bytes):
                try:
                    snapshot["state"] = pickle.loads(snapshot["state"])
                except Exception as exc:
                    raise CheckpointError(
                        f"checkpoint {str(where)!r} cannot be decoded: {exc}"
                    ) from exc
        return LoadedCheckpoint(checkpoint_id, where, payload)

    def latest(self) -> LoadedCheckpoint | None:
        """The newest checkpoint or savepoint that verifies (older ones if it is damaged)."""
        for path in self._snapshots_newest_first():
            try:
                return self.load(path)
            except CheckpointError as exc:
                warnings.warn(
                    f"{exc}; falling back to an older checkpoint", RuntimeWarning, stacklevel=2
                )
        return None

    def resolve(self, spec: str) -> LoadedCheckpoint:
        """``latest`` or a checkpoint/savepoint directory path."""
        if spec == "latest":
            found = self.latest()
            if found is None:
                raise CheckpointError(f"no complete checkpoint in {str(self.directory)!r}")
            return found
        return self.load(spec)
