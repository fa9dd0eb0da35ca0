"""WebSocket fan-out that a slow or stuck browser can never push back into the engine.

How a record travels, and where it may be dropped (every drop is counted):

1. The engine thread calls :meth:`Hub.publish_many` with a batch. With no subscriber it
   returns at once; otherwise the batch goes into the hub's *inbox*, a ring that keeps
   the newest ``inbox_size`` items (older ones are counted as ``sampled_out`` — at high
   rates the browser sees a sample, not everything). Nothing here waits.
2. Every ``interval`` seconds the event loop takes the inbox, encodes it to JSON *once*
   and offers the text to each subscriber's bounded queue; a full queue drops the
   message for that subscriber only and counts its items in the subscriber's ``dropped``.
   A message tells its client how much it has missed (``dropped``), so its text differs
   between clients only by that count: it is built once per distinct count (once in all
   while nobody is behind), never once per client, and the queues share the strings.
3. Each subscriber has its own sender task; a client that does not read blocks only that
   task, whose queue then fills and drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from starlette.websockets import WebSocket

__all__ = ["Hub", "Subscriber"]


class Subscriber:
    """One connected WebSocket client of a hub, with its bounded queue and counters."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.sent = 0
        self.dropped = 0

    def offer(self, text: str, items: int) -> None:
        """Queue a message, or drop it when the client is behind."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.dropped += items


class Hub:
    """Fans out one kind of record (transactions, alerts, latency) to WebSocket clients.

    Args:
        name: the stream's name, sent in every message as ``stream``.
        to_json: turns one published item into a JSON-ready value (runs on the event
            loop, only for items that are actually sent).
        inbox_size: items kept between two flushes; older ones are sampled out.
        queue_size: messages buffered per client before its messages are dropped.
        interval: seconds between flushes; bounds the message rate per client.
    """

    def __init__(
        self,
        name: str,
        to_json: Callable[[Any], Any] = lambda item: item,
        *,
        inbox_size: int = 200,
        queue_size: int = 32,
        interval: float = 0.1,
    ) -> None:
        self.name = name
        self._to_json = to_json
        self._inbox: deque[Any] = deque(maxlen=inbox_size)
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self.queue_size = queue_size
        self.interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.sampled_out = 0
        self.dropped_closed = 0
        self.sent_closed = 0

    # -- any thread ------------------------------------------------------------------------------
    def publish_many(self, items: Sequence[Any]) -> None:
        """Hand records to the hub; never blocks, does nothing when nobody listens."""
        if not self._subscribers or not items:
            return
        with self._lock:
            overflow = len(self._inbox) + len(items) - (self._inbox.maxlen or 0)
            if overflow > 0:
                self.sampled_out += overflow
            self._inbox.extend(items)
            self.published += len(items)

    @property
    def subscriber_count(self) -> int:
        """Clients connected now."""
        return len(self._subscribers)

    @property
    def dropped(self) -> int:
        """Items dropped for slow clients, over the current clients and the departed ones."""
        return self.dropped_closed + sum(s.dropped for s in list(self._subscribers))

    @property
    def sent(self) -> int:
        """Messages sent, over the current clients and the departed ones."""
        return self.sent_closed + sum(s.sent for s in list(self._subscribers))

    @property
    def max_backlog(self) -> int:
        """The longest queue of any current client (at most ``queue_size``)."""
        return max((s.queue.qsize() for s in list(self._subscribers)), default=0)

    # -- event loop ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start flushing on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._flush_forever(), name=f"hub-{self.name}")

    async def stop(self) -> None:
        """Stop flushing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        """Send what the inbox holds to every subscriber (event-loop thread)."""
        with self._lock:
            if not self._inbox:
                return
            items = list(self._inbox)
            self._inbox.clear()
        self.send([self._to_json(item) for item in items])

    def send(self, items: list[Any]) -> None:
        """Encode ``items`` once and offer them to every subscriber (event-loop thread)."""
        if not self._subscribers:
            return
        encoded = json.dumps(items, separators=(",", ":"))
        head = '{"stream":' + json.dumps(self.name) + ',"dropped":'
        texts: dict[int, str] = {}
        for subscriber in list(self._subscribers):
            dropped = subscriber.dropped
            text = texts.get(dropped)
            if text is None:
                text = texts[dropped] = f'{head}{dropped},"items":{encoded}}}'
            subscriber.offer(text, len(items))

    def subscribe(self) -> Subscriber:
        """A new client."""
        subscriber = Subscriber(self.queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """A client left; its drop count is kept in the hub's total."""
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            self.dropped_closed += subscriber.dropped
            self.sent_closed += subscriber.sent

    async def pump(self, websocket: WebSocket, subscriber: Subscriber) -> None:
        """Send a subscriber's queued messages until the connection ends."""
        while True:
            text = await subscriber.queue.get()
            await websocket.send_text(text)
            subscriber.sent += 1
