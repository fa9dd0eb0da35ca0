"""Pipes between the job's participants: length-prefixed frames, written without blocking.

Every ordered pair of participants (workers, the driver and the coordinator) has its
own pipe, so a pipe has one writer and frames never interleave. The writer is the
sending thread itself: no feeder thread copies the bytes again or competes for the
interpreter lock (a :class:`multiprocessing.Queue` has one; while it waited for the
lock in the middle of a message, the receiving worker sat blocked reading the rest).

Writes never block: what the pipe cannot take now waits in the writer's ``pending``
and goes out on a later :meth:`FrameWriter.pump`. Reads never block either: a reader
takes what the pipe holds and hands out complete frames only, so a receiver never
waits in the middle of a message. Waiting is explicit (:func:`wait`), on several pipes
at once. Pipes between workers are enlarged (Linux) to hold several batches, so a
sender seldom waits, within the user's pipe quota (:func:`data_pipe_bytes`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
from collections import deque
from collections.abc import Callable
from typing import Any

from fraudstream.exceptions import ConfigurationError

__all__ = ["COORDINATOR", "FrameReader", "FrameWriter", "Mesh", "wait"]

#: The sender index of the coordinator (the job's own thread).
COORDINATOR = -1

_HEADER = 8
_PIPE_BYTES = 1 << 20
_MIN_PIPE_BYTES = 1 << 16  # Linux's default size
_PIPE_BUDGET = 32 << 20  # when the quota cannot be read, or is 0 (no limit)
#: Bytes asked of a pipe per read (more reads follow while the pipe fills them): a
#: 1 MiB buffer per read can cost a fresh memory mapping each time (~45 us measured).
_READ_BYTES = 1 << 16
_MAX_IOV = 64


class FrameWriter:
    """The sending end of one pipe: frames are queued and written as the pipe takes them."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: deque[memoryview] = deque()
        self.pending_bytes = 0
        self.broken = False  # the receiver is gone: frames are dropped

    def put(self, *parts: bytes) -> None:
        """Queue ``parts``, joined, as one frame and write what the pipe takes now.

        The parts go to the pipe as they are (one ``writev``), never copied together.
        """
        if self.broken:
            return
        size = sum(map(len, parts))
        self.pending.append(memoryview(size.to_bytes(_HEADER, "little")))
        for part in parts:
            if part:  # an empty view would never be written off the queue
                self.pending.append(memoryview(part))
        self.pending_bytes += _HEADER + size
        self.pump()

    def pump(self) -> bool:
        """Write pending bytes until the pipe is full; whether nothing is pending now."""
        pending = self.pending
        while pending:
            try:
                written = os.writev(self.fd, list(pending)[:_MAX_IOV])
            except BlockingIOError:
                return False
            except (BrokenPipeError, OSError):
                self.broken = True  # the receiver died; the coordinator notices and stops
                pending.clear()
                self.pending_bytes = 0
                return True
            self.pending_bytes -= written
            while written:
                head = pending[0]
                if written >= len(head):
                    written -= len(head)
                    pending.popleft()
                else:
                    pending[0] = head[written:]
                    written = 0
        return True


class FrameReader:
    """The receiving end of one pipe: complete frames out of what has arrived."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.closed = False

    def read(self, frames: deque[Any], convert: Callable[[memoryview], Any] = bytes) -> int:
        """Append the frames completed by what the pipe holds now; how many.

        Each frame is appended as ``convert`` makes it from a view of the read buffer
        (a copy of the bytes by default; a decoder reads them in place).
        """
        buffer = self.buffer
        while True:
            try:
                chunk = os.read(self.fd, _READ_BYTES)
            except BlockingIOError:
                break
            if not chunk:
                self.closed = True  # every writer is gone
                break
            buffer += chunk
            if len(chunk) < _READ_BYTES:
                break
        count = 0
        start = 0
        end = len(buffer)
        view = memoryview(buffer)
        try:
            while end - start >= _HEADER:
                size = int.from_bytes(view[start : start + _HEADER], "little")
                if end - start - _HEADER < size:
                    break
                frames.append(convert(view[start + _HEADER : start + _HEADER + size]))
                start += _HEADER + size
                count += 1
        finally:
            view.release()
        if start:
            del buffer[:start]
        return count


def wait(readers: list[FrameReader], writers: list[FrameWriter], timeout: float | None) -> None:
    """Sleep until a reader has bytes, a writer's pipe has room, or ``timeout`` seconds."""
    poller = select.poll()
    for reader in readers:
        if not reader.closed:
            poller.register(reader.fd, select.POLLIN)
    for writer in writers:
        if writer.pending and not writer.broken:
            poller.register(writer.fd, select.POLLOUT)
    poller.poll(None if timeout is None else max(0, int(timeout * 1000)))


def _open_pipe(size: int | None) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    for fd in (read_fd, write_fd):
        os.set_blocking(fd, False)
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if size is not None and set_size is not None:
        # Refused above /proc/sys/fs/pipe-max-size or the user's pipe quota: the pipe
        # keeps its default size, which works, with more rounds per batch.
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_fd, set_size, size)
    return read_fd, write_fd


def data_pipe_bytes(pipes: int) -> int:
    """The buffer size for each of ``pipes`` data pipes: up to 1 MiB, within a budget.

    Linux lets a user's pipes hold ``/proc/sys/fs/pipe-user-pages-soft`` pages in all
    (64 MiB by default); past that, every new pipe of the user gets a single page. The
    data pipes share half of it, so a job with many workers keeps usable pipes and the
    user's other programs keep theirs.
    """
    try:
        with open("/proc/sys/fs/pipe-user-pages-soft") as pages:
            quota = int(pages.read()) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        quota = 0
    budget = quota // 2 if quota > 0 else _PIPE_BUDGET
    size = _PIPE_BYTES
    while size > _MIN_PIPE_BYTES and size * pipes > budget:
        size //= 2
    return size


def _ensure_descriptors(needed: int) -> None:
    """Room for ``needed`` more open files, raising the soft limit up to the hard one.

    A mesh of ``n`` workers holds ``2 n^2`` pipe ends in the coordinator until it forks;
    the usual soft limit of 1024 ends at about 22 workers.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256  # the process's own files, sockets, a state backend's
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft < want:
        raise ConfigurationError(
            f"{needed // 2} pipes between the worker processes need about {want} open files, "
            f"more than this process may open ({soft}; raise it with `ulimit -n`), or use "
            "fewer worker processes"
        )


class Mesh:
    """One pipe per (sender, receiver) between ``participants`` and the coordinator.

    Made before forking; each process then keeps the ends it uses (:meth:`keep`), so a
    pipe whose receiver died reports a broken pipe to its writer instead of filling up.
    """

    def __init__(self, participants: int) -> None:
        self.participants = participants
        self.pipes: dict[tuple[int, int], tuple[int, int]] = {}
        self.open: set[int] = set()
        # Batches of records cross between participants; the coordinator sends only
        # control messages, which the default size holds.
        self.data_bytes = data_pipe_bytes(participants * (participants - 1))
        senders = [COORDINATOR, *range(participants)]
        _ensure_descriptors(2 * participants * participants)
        try:
            for receiver in range(participants):
                for sender in senders:
                    if sender != receiver:
                        size = None if sender == COORDINATOR else self.data_bytes
                        pair = _open_pipe(size)
                        self.pipes[sender, receiver] = pair
                        self.open.update(pair)
        except BaseException:
            self.close()  # out of file descriptors part way: none is left open
            raise

    def readers(self, receiver: int) -> list[FrameReader]:
        """The inbound pipes of ``receiver`` (the coordinator's first)."""
        return [
            FrameReader(read_fd)
            for (_, to), (read_fd, _) in sorted(self.pipes.items())
            if to == receiver
        ]

    def writers(self, sender: int) -> list[FrameWriter | None]:
        """The outbound pipes of ``sender``, by receiver (``None`` for itself)."""
        return [
            None if receiver == sender else FrameWriter(self.pipes[sender, receiver][1])
            for receiver in range(self.participants)
        ]

    def keep(self, participants: set[int]) -> None:
        """Close the ends that no participant in ``participants`` of this process uses."""
        used: set[int] = set()
        for (sender, receiver), (read_fd, write_fd) in self.pipes.items():
            if receiver in participants:
                used.add(read_fd)
            if sender in participants:
                used.add(write_fd)
        for fd in self.open - used:
            os.close(fd)
        self.open &= used

    def ends_of(self, participant: int) -> list[int]:
        """The pipe ends ``participant`` uses (reads what is sent to it, writes its sends)."""
        return [
            read_fd if receiver == participant else write_fd
            for (sender, receiver), (read_fd, write_fd) in self.pipes.items()
            if participant in (sender, receiver)
        ]

    def close(self) -> None:
        """Close every end this process still holds."""
        for fd in self.open:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.open = set()
