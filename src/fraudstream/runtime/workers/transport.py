"""Messages between worker processes: batches of records, watermarks, barriers, control.

Every participant has an inbound pipe from each other one (:mod:`.pipes`). What a worker
sends to another is collected in its :class:`Outbox` and sent as *one* encoded list of
messages between rounds, once it holds about a source batch of records (or at once when
the worker idles), so the per-message cost of the pipe is paid per batch, not per
record. A message is a tuple whose first element says what it is:

- ``(DATA, channel, values, timestamps)``, ``(WATERMARK, channel, ms)``,
  ``(IDLE, channel, flag)``, ``(END, channel)``, ``(BARRIER, channel, checkpoint id)``
  travel on a channel ``(node id, subtask index, input channel index)``;
- ``(TRIGGER, checkpoint id)``, ``(COMPLETE, checkpoint id)``, ``(CANCEL,)`` and
  ``(EXIT,)`` come from the coordinator.

A message list crosses as bytes: :mod:`marshal` when everything in it is a built-in
value (tuples, lists, dicts, numbers, strings: about twice as fast as pickle both
ways), else :mod:`pickle`; the first byte says which. Both ends run the same
interpreter, so marshal's version-specific format is safe here.

What a pipe cannot take waits in the sender, up to a bound. A worker past the bound
waits for room, and keeps reading its own inbound pipes meanwhile (:meth:`Inbox.stash`),
so two workers sending to each other can never wait on each other forever.
"""

from __future__ import annotations

import marshal
import pickle
import select
from collections import deque
from typing import Any

from fraudstream.runtime.operators.base import Timestamps
from fraudstream.runtime.workers.pipes import FrameReader, FrameWriter, wait

__all__ = [
    "BARRIER",
    "CANCEL",
    "COMPLETE",
    "DATA",
    "END",
    "EXIT",
    "IDLE",
    "TRIGGER",
    "WATERMARK",
    "Inbox",
    "Outbox",
    "RemoteChannel",
    "decode",
    "encode",
    "encode_parts",
]

DATA, WATERMARK, IDLE, END, BARRIER = 0, 1, 2, 3, 4
TRIGGER, COMPLETE, CANCEL, EXIT = 10, 11, 12, 13

ChannelKey = tuple[int, int, int]

_MARSHALLED, _PICKLED = b"m", b"p"

#: Version 2, the last without references: from version 3 on, marshal looks up every
#: object that has more than one reference in a table (to write it once), which more
#: than doubles the time to encode records whose fields the source still holds (a map
#: from the source's objects to tuples shares every field). Shared objects are written
#: once per use instead.
_MARSHAL_VERSION = 2


def encode_parts(messages: list[Any]) -> tuple[bytes, bytes]:
    """A message list as a codec mark and a body (marshal when it can, else pickle).

    Two parts, so the body is never copied to put the mark before it.
    """
    try:
        return _MARSHALLED, marshal.dumps(messages, _MARSHAL_VERSION)
    except ValueError:  # an object marshal does not know (a class instance, a named tuple)
        return _PICKLED, pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)


def encode(messages: list[Any]) -> bytes:
    """A message list as bytes: :func:`encode_parts` joined."""
    return b"".join(encode_parts(messages))


def decode(data: bytes | memoryview) -> list[Any]:
    """The message list :func:`encode` made (read in place from a view)."""
    body = memoryview(data)[1:]
    messages: list[Any] = marshal.loads(body) if data[:1] == _MARSHALLED else pickle.loads(body)
    return messages


class Inbox:
    """A participant's inbound pipes, and the complete frames read from them."""

    def __init__(self, readers: list[FrameReader]) -> None:
        self.readers = readers
        self.frames: deque[list[Any]] = deque()  # message lists, decoded as read
        # One poll for all pipes, asked every round: cheaper than reading each empty pipe.
        self.by_fd = {reader.fd: reader for reader in readers}
        self.poller = select.poll()
        for reader in readers:
            self.poller.register(reader.fd, select.POLLIN)

    def stash(self) -> None:
        """Read what every pipe holds now (also to let senders blocked on us proceed)."""
        for fd, _ in self.poller.poll(0):
            reader = self.by_fd[fd]
            reader.read(self.frames, decode)
            if reader.closed:  # every writer is gone: it would report ready forever
                self.poller.unregister(fd)

    def get(self, timeout: float | None) -> list[Any] | None:
        """The next list of messages; ``None`` when none came within ``timeout`` seconds."""
        if not self.frames:
            self.stash()
            if not self.frames and timeout:
                wait(self.readers, [], timeout)
                self.stash()
            if not self.frames:
                return None
        return self.frames.popleft()


class Outbox:
    """Messages to other participants, batched per destination until :meth:`flush`."""

    #: Bytes waiting for a pipe (beyond what the pipe holds) before a sender waits.
    PENDING_LIMIT = 4 << 20

    def __init__(
        self, writers: list[FrameWriter | None], inbox: Inbox, flush_records: int = 1024
    ) -> None:
        # About one source batch per message list: larger lists were slower per record
        # (records wait in the outbox out of the CPU's caches, and the garbage collector
        # runs over the thousands of tuples held), smaller ones pay the pipe more often.
        self.writers = writers
        self.inbox = inbox
        self.flush_records = flush_records
        self.pending: list[list[Any]] = [[] for _ in writers]
        self.records = [0] * len(writers)
        self.batches_sent = 0
        self.bytes_sent = 0
        self.rounds = 0

    def add(self, destination: int, message: tuple[Any, ...], records: int = 0) -> None:
        """Queue ``message`` for ``destination``; sent by :meth:`send_full` or :meth:`flush`."""
        self.pending[destination].append(message)
        self.records[destination] += records

    def send_full(self) -> None:
        """Send the message lists that hold ``flush_records`` records or more.

        Called between rounds, not from :meth:`add`: by then the source batch the records
        came in is gone, and a record no other list holds encodes faster (marshal tracks
        shared objects).
        """
        for destination, records in enumerate(self.records):
            if records >= self.flush_records:
                self.send(destination)

    def send(self, destination: int) -> None:
        """Send what is pending for ``destination`` as one message list."""
        messages = self.pending[destination]
        if not messages:
            return
        self.pending[destination] = []
        self.records[destination] = 0
        mark, body = encode_parts(messages)
        writer = self.writers[destination]
        assert writer is not None
        writer.put(mark, body)
        while writer.pending_bytes > self.PENDING_LIMIT:
            # The receiver is behind: wait for room, taking in what others send us
            # meanwhile (the receiver may itself be waiting to send to us).
            self.inbox.stash()
            wait(self.inbox.readers, [writer], 0.05)
            writer.pump()
        self.batches_sent += 1
        self.bytes_sent += len(mark) + len(body)

    def due(self) -> bool:
        """Whether messages have waited for enough rounds to be sent anyway."""
        self.rounds += 1
        return self.rounds % 32 == 0

    def flush(self) -> None:
        """Send everything pending."""
        for destination, messages in enumerate(self.pending):
            if messages:
                self.send(destination)

    def pump(self) -> bool:
        """Write what the pipes take now; whether nothing waits for a pipe any more."""
        idle = True
        for writer in self.writers:
            if writer is not None and writer.pending and not writer.pump():
                idle = False
        return idle

    def waiting_writers(self) -> list[FrameWriter]:
        """The pipes with bytes waiting to be written."""
        return [w for w in self.writers if w is not None and w.pending]


class RemoteChannel:
    """A channel to an operator instance in another worker: it fills the outbox."""

    __slots__ = ("destination", "key", "outbox")

    def __init__(self, outbox: Outbox, destination: int, key: ChannelKey) -> None:
        self.outbox = outbox
        self.destination = destination
        self.key = key

    def push(self, values: list[Any], timestamps: Timestamps) -> None:
        """Send a batch."""
        self.outbox.add(self.destination, (DATA, self.key, values, timestamps), len(values))

    def watermark(self, watermark: int) -> None:
        """Send a watermark."""
        self.outbox.add(self.destination, (WATERMARK, self.key, watermark))

    def idle(self, idle: bool) -> None:
        """Send an idleness change."""
        self.outbox.add(self.destination, (IDLE, self.key, idle))

    def end(self) -> None:
        """Send end of input."""
        self.outbox.add(self.destination, (END, self.key))

    def barrier(self, checkpoint_id: int) -> None:
        """Send a checkpoint barrier."""
        self.outbox.add(self.destination, (BARRIER, self.key, checkpoint_id))
