"""Pipes between workers: frames arrive whole and in order, writes never block, two
workers flooding each other never deadlock, and a dead receiver does not stop a sender."""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any

import pytest

from fraudstream.runtime.workers.pipes import COORDINATOR, FrameReader, FrameWriter, Mesh, wait
from fraudstream.runtime.workers.transport import DATA, Inbox, Outbox


def test_frames_of_any_size_arrive_whole_and_in_order() -> None:
    mesh = Mesh(1)
    try:
        writer = mesh.writers(COORDINATOR)[0]
        (reader,) = mesh.readers(0)
        assert writer is not None
        sizes = [0, 1, 7, 8, 4096, 65_537, 3 << 20, 5, 1 << 20]
        payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
        frames: deque[bytes] = deque()
        for payload in payloads:
            writer.put(payload)  # returns at once, even for frames larger than the pipe
        while len(frames) < len(payloads):
            wait([reader], [writer], 1.0)
            writer.pump()
            reader.read(frames)
        assert list(frames) == payloads
        assert writer.pending_bytes == 0
    finally:
        mesh.close()


def _flood(outbox: Outbox, inbox: Inbox, destination: int, batches: int) -> list[Any]:
    """Send ``batches`` large batches to ``destination``, then take everything it sent."""
    received: list[Any] = []
    for number in range(batches):
        batch = [(number, i, float(i)) for i in range(20_000)]  # ~0.5 MB encoded
        outbox.add(destination, (DATA, (0, 0, 0), batch, None), len(batch))
        outbox.send_full()  # as a worker does between rounds
    outbox.flush()
    while len(received) < batches:
        while not outbox.pump():
            inbox.stash()
            wait(inbox.readers, outbox.waiting_writers(), 0.05)
        messages = inbox.get(0.05)
        if messages is not None:
            received.extend(message[2][0][0] for message in messages)
    return received


def test_two_workers_flooding_each_other_never_wait_forever() -> None:
    mesh = Mesh(2)
    try:
        inboxes = [Inbox(mesh.readers(i)) for i in range(2)]
        outboxes = [Outbox(mesh.writers(i), inboxes[i], flush_records=20_000) for i in range(2)]
        results: dict[int, list[Any]] = {}

        def worker(index: int) -> None:
            results[index] = _flood(outboxes[index], inboxes[index], 1 - index, 40)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads), "the workers deadlocked"
        assert results == {0: list(range(40)), 1: list(range(40))}
        # Each sender waited for room at least once: 40 batches exceed pipe and bound.
        assert sum(o.bytes_sent for o in outboxes) > 2 * Outbox.PENDING_LIMIT
    finally:
        mesh.close()


def test_a_receiver_that_died_does_not_stop_the_sender() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    writer = FrameWriter(write_fd)
    os.close(read_fd)
    try:
        writer.put(b"lost")
        writer.put(b"x" * (4 << 20))
        assert writer.broken
        assert writer.pending_bytes == 0
    finally:
        os.close(write_fd)


def test_a_reader_sees_the_end_when_every_writer_is_gone() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    reader = FrameReader(read_fd)
    writer = FrameWriter(write_fd)
    writer.put(b"last words")
    os.close(write_fd)
    frames: deque[bytes] = deque()
    try:
        for _ in range(3):  # the frame, then the end (one read may stop before it)
            reader.read(frames)
        assert list(frames) == [b"last words"]
        assert reader.closed
    finally:
        os.close(read_fd)


def test_each_process_keeps_only_the_ends_it_uses() -> None:
    mesh = Mesh(3)
    try:
        assert len(mesh.pipes) == 3 * 3  # from each of 2 peers and the coordinator, x3
        mesh.keep({1})
        inbound = {r.fd for r in mesh.readers(1)}
        outbound = {w.fd for w in mesh.writers(1) if w is not None}
        assert mesh.open == inbound | outbound
        closed = [fd for pair in mesh.pipes.values() for fd in pair if fd not in mesh.open]
        for fd in closed:
            try:
                os.fstat(fd)
            except OSError:
                continue
            raise AssertionError(f"fd {fd} is still open")
    finally:
        mesh.close()


def _pipe_size(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))


def test_data_pipes_share_half_the_users_pipe_quota() -> None:
    from fraudstream.runtime.workers.pipes import data_pipe_bytes

    with open("/proc/sys/fs/pipe-user-pages-soft") as pages:
        quota = int(pages.read()) * os.sysconf("SC_PAGE_SIZE")
    assert data_pipe_bytes(2) == 1 << 20  # 2 workers: 2 MiB in all
    for pipes in (2, 12, 56, 90, 240, 10_000):
        size = data_pipe_bytes(pipes)
        assert size & (size - 1) == 0 and 1 << 16 <= size <= 1 << 20
        # Within half the quota unless already at the smallest (default) size.
        assert size * pipes <= quota // 2 or size == 1 << 16
    assert data_pipe_bytes(240) < data_pipe_bytes(12)


def test_only_pipes_between_workers_are_enlarged() -> None:
    mesh = Mesh(3)
    try:
        for (sender, _), (_, write_fd) in mesh.pipes.items():
            expected = mesh.data_bytes if sender != COORDINATOR else 1 << 16
            assert _pipe_size(write_fd) == expected
    finally:
        mesh.close()


def test_a_mesh_that_runs_out_of_file_descriptors_leaves_none_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    from fraudstream.runtime.workers import pipes

    # Running out part way, as when other files take what the limit left room for (the
    # mesh's own check of the limit, which would raise it first, is left out here).
    monkeypatch.setattr(pipes, "_ensure_descriptors", lambda needed: None)
    before = set(os.listdir("/proc/self/fd"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(before) + 40, hard))
    try:
        try:
            Mesh(8)  # 64 pipes: 128 descriptors
        except OSError as exc:
            assert "Too many open files" in str(exc)
        else:
            raise AssertionError("Mesh(8) opened 128 descriptors under a limit of 40 more")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert set(os.listdir("/proc/self/fd")) == before


def test_a_frame_of_several_parts_arrives_joined_and_can_be_read_in_place() -> None:
    mesh = Mesh(1)
    try:
        writer = mesh.writers(COORDINATOR)[0]
        (reader,) = mesh.readers(0)
        assert writer is not None
        frames_sent = [(b"m", b"body" * 1000), (b"", b"x"), (b"p",), (b"a", b"", b"bc")]
        for parts in frames_sent:
            writer.put(*parts)
        seen: list[int] = []

        def in_place(view: memoryview) -> bytes:
            seen.append(len(view))  # a view of the read buffer, not a copy
            assert isinstance(view, memoryview)
            return view.tobytes()

        frames: deque[Any] = deque()
        while len(frames) < len(frames_sent):
            wait([reader], [writer], 1.0)
            writer.pump()
            reader.read(frames, in_place)
        assert list(frames) == [b"".join(parts) for parts in frames_sent]
        assert seen == [len(f) for f in frames]
    finally:
        mesh.close()
