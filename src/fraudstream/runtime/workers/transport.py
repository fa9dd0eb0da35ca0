"""Messages between worker processes: batches of records, watermarks, barriers, control.

Every worker has one inbound queue. What a worker sends to another during a round is
collected in its :class:`Outbox` and sent as *one* pickled list of messages at the end
of the round (or earlier once it holds enough records), so the per-message cost of the
queue is paid per batch, not per record. A message is a tuple whose first element
says what it is:

- ``(DATA, channel, values, timestamps)``, ``(WATERMARK, channel, ms)``,
  ``(IDLE, channel, flag)``, ``(END, channel)``, ``(BARRIER, channel, checkpoint id)``
  travel on a channel ``(node id, subtask index, input channel index)``;
- ``(TRIGGER, checkpoint id)``, ``(COMPLETE, checkpoint id)``, ``(CANCEL,)`` and
  ``(EXIT,)`` come from the coordinator.

A message list crosses as bytes: :mod:`marshal` when everything in it is a built-in
value (tuples, lists, dicts, numbers, strings: about twice as fast as pickle both
ways), else :mod:`pickle`; the first byte says which. Both ends run the same
interpreter, so marshal's version-specific format is safe here.

Queues are bounded. A worker whose send would block keeps taking its own inbound
messages off its queue meanwhile (:meth:`Inbox.stash`), so two workers sending to each
other can never wait on each other forever.
"""

from __future__ import annotations

import marshal
import pickle
import queue
from collections import deque
from typing import Any

from fraudstream.runtime.operators.base import Timestamps

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
]

DATA, WATERMARK, IDLE, END, BARRIER = 0, 1, 2, 3, 4
TRIGGER, COMPLETE, CANCEL, EXIT = 10, 11, 12, 13

ChannelKey = tuple[int, int, int]

_MARSHALLED, _PICKLED = b"m", b"p"


def encode(messages: list[Any]) -> bytes:
    """A message list as bytes (marshal when it can, else pickle)."""
    try:
        return _MARSHALLED + marshal.dumps(messages)
    except ValueError:  # an object marshal does not know (a class instance, a named tuple)
        return _PICKLED + pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> list[Any]:
    """The message list :func:`encode` made."""
    body = memoryview(data)[1:]
    messages: list[Any] = marshal.loads(body) if data[:1] == _MARSHALLED else pickle.loads(body)
    return messages


class Inbox:
    """A worker's inbound queue, plus what it took off the queue while blocked sending."""

    def __init__(self, inbound: Any) -> None:
        self.queue = inbound
        self.stashed: deque[bytes] = deque()

    def stash(self) -> None:
        """Take everything waiting off the queue (to let senders proceed)."""
        try:
            while True:
                self.stashed.append(self.queue.get_nowait())
        except queue.Empty:
            pass

    def get(self, timeout: float | None) -> list[Any] | None:
        """The next list of messages; ``None`` when none came within ``timeout`` seconds."""
        if self.stashed:
            data = self.stashed.popleft()
        else:
            try:
                data = self.queue.get_nowait() if not timeout else self.queue.get(True, timeout)
            except queue.Empty:
                return None
        return decode(data)


class Outbox:
    """Messages to other workers, batched per destination until :meth:`flush`."""

    def __init__(self, queues: list[Any], inbox: Inbox, flush_records: int = 8192) -> None:
        self.queues = queues
        self.inbox = inbox
        self.flush_records = flush_records
        self.pending: list[list[Any]] = [[] for _ in queues]
        self.records = [0] * len(queues)
        self.batches_sent = 0
        self.bytes_sent = 0
        self.rounds = 0

    def add(self, destination: int, message: tuple[Any, ...], records: int = 0) -> None:
        """Queue ``message`` for ``destination``; sent at the next flush."""
        self.pending[destination].append(message)
        if records:
            self.records[destination] += records
            if self.records[destination] >= self.flush_records:
                self.send(destination)

    def send(self, destination: int) -> None:
        """Send what is pending for ``destination`` as one message list."""
        messages = self.pending[destination]
        if not messages:
            return
        self.pending[destination] = []
        self.records[destination] = 0
        data = encode(messages)
        target = self.queues[destination]
        while True:
            try:
                target.put(data, True, 0.002)
                break
            except queue.Full:
                self.inbox.stash()  # the receiver may be waiting to send to us
        self.batches_sent += 1
        self.bytes_sent += len(data)

    def due(self) -> bool:
        """Whether messages have waited for enough rounds to be sent anyway."""
        self.rounds += 1
        return self.rounds % 32 == 0

    def flush(self) -> None:
        """Send everything pending."""
        for destination, messages in enumerate(self.pending):
            if messages:
                self.send(destination)


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
