"""Operators over two inputs: connected streams and the broadcast state pattern."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fraudstream.datastream.state import MapStateDescriptor, StateDescriptor
from fraudstream.datastream.time_domain import TimeDomain
from fraudstream.runtime.operators.base import Timestamps
from fraudstream.runtime.operators.contexts import (
    BroadcastStates,
    FunctionContext,
    KeyedTimerService,
    NonKeyedTimerService,
)
from fraudstream.runtime.operators.emit import BatchCollector
from fraudstream.runtime.operators.hooks import batch_hook
from fraudstream.runtime.operators.keyed import KeyedSupport
from fraudstream.runtime.operators.process import UserFunctionOperator

__all__ = [
    "BroadcastProcessOperator",
    "CoFlatMapOperator",
    "CoMapOperator",
    "CoProcessOperator",
    "KeyedBroadcastProcessOperator",
    "KeyedCoProcessOperator",
]


class _TwoInput(UserFunctionOperator):
    """Runs a method per input; keyed variants set the key from the input's selector."""

    num_inputs = 2
    ctx: FunctionContext
    key_selectors: tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None] = (None, None)

    def _run(
        self,
        fn: Callable[..., Any],
        key_of: Callable[[Any], Any] | None,
        ctx: FunctionContext | None,
        values: list[Any],
        timestamps: Timestamps,
    ) -> None:
        collector = BatchCollector()
        backend = self.backend_or_none()
        stamps = timestamps if timestamps is not None else [None] * len(values)
        value = None
        try:
            for value, ts in zip(values, stamps):
                if key_of is not None:
                    backend.current_key = key_of(value)
                if ctx is None:
                    collector.add(fn(value), ts)
                else:
                    ctx.ts = ts
                    collector.add(fn(value, ctx), ts)
        except Exception as exc:
            collector.flush(self.out)
            raise self.failure(exc, value, True) from exc
        collector.flush(self.out)

    def _run_batch(
        self,
        fn: Callable[..., Any],
        keys: list[Any] | None,
        values: list[Any],
        timestamps: Timestamps,
    ) -> None:
        """Hand the whole batch to the function's batch hook (see ``datastream.batch``)."""
        collector = BatchCollector(self.out.side)
        try:
            if keys is None:
                fn(values, timestamps, self.ctx, collector)
            else:
                fn(keys, values, timestamps, self.ctx, collector)
        except Exception as exc:
            collector.flush(self.out)
            raise self.failure(exc, None) from exc
        collector.flush(self.out)


class CoMapOperator(_TwoInput):
    """``ConnectedStreams.map`` with a ``CoMapFunction``."""

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Map first-input records with ``map1``."""
        self._run(lambda v: (self.function.map1(v),), None, None, values, timestamps)

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Map second-input records with ``map2``."""
        self._run(lambda v: (self.function.map2(v),), None, None, values, timestamps)


class CoFlatMapOperator(_TwoInput):
    """``ConnectedStreams.flat_map`` with a ``CoFlatMapFunction``."""

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Flat-map first-input records with ``flat_map1``."""
        self._run(self.function.flat_map1, None, None, values, timestamps)

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Flat-map second-input records with ``flat_map2``."""
        self._run(self.function.flat_map2, None, None, values, timestamps)


class CoProcessOperator(_TwoInput):
    """``ConnectedStreams.process`` with a ``CoProcessFunction`` (not keyed)."""

    def open(self) -> None:
        """Open the function with a context without timers."""
        self.ctx = FunctionContext(self, NonKeyedTimerService(self))
        super().open()

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process first-input records."""
        self._run(self.function.process_element1, None, self.ctx, values, timestamps)

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process second-input records."""
        self._run(self.function.process_element2, None, self.ctx, values, timestamps)


class _KeyedTwoInput(KeyedSupport, _TwoInput):
    timer_ctx: FunctionContext

    def __init__(
        self,
        name: str,
        uid: str | None,
        function: Any,
        key_selector1: Callable[[Any], Any],
        key_selector2: Callable[[Any], Any] | None,
    ) -> None:
        _TwoInput.__init__(self, name, uid, function)
        KeyedSupport.__init__(self)
        self.key_selector1 = key_selector1
        self.key_selector2 = key_selector2

    def invoke_timer(self, timestamp: int, domain: TimeDomain, collector: BatchCollector) -> None:
        """Call ``on_timer`` (the key is set by the caller)."""
        on_timer = getattr(self.function, "on_timer", None)
        if on_timer is None:
            return
        ctx = self.timer_ctx
        ctx.ts = timestamp
        ctx.domain = domain
        try:
            collector.add(
                on_timer(timestamp, ctx), timestamp if domain is TimeDomain.EVENT_TIME else None
            )
        except Exception as exc:
            raise self.failure(
                exc, f"on_timer({timestamp}) for key {self.backend.current_key!r}"
            ) from exc
        finally:
            ctx.domain = None


class KeyedCoProcessOperator(_KeyedTwoInput):
    """``ConnectedStreams.key_by(...).process`` with a ``KeyedCoProcessFunction``."""

    def open(self) -> None:
        """Create state and timers, then open the function."""
        self.open_keyed()
        timers = KeyedTimerService(self, self.backend, self.event_timers, self.processing_timers)
        self.ctx = FunctionContext(self, timers, self.backend)
        self.timer_ctx = self.ctx
        super().open()

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process first-input records under their keys."""
        fn = self.function.process_element1
        self._run(fn, self.key_selector1, self.ctx, values, timestamps)

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process second-input records under their keys."""
        fn = self.function.process_element2
        self._run(fn, self.key_selector2, self.ctx, values, timestamps)


class BroadcastProcessOperator(_TwoInput):
    """A non-keyed stream connected with a broadcast stream (``BroadcastProcessFunction``)."""

    def __init__(
        self, name: str, uid: str | None, function: Any, descriptors: list[MapStateDescriptor]
    ) -> None:
        super().__init__(name, uid, function)
        self.broadcast = BroadcastStates(descriptors)
        self._batch_fn: Callable[..., Any] | None = None

    def bind(self) -> None:
        """Use the function's batch hook, if it has one and no error output is set."""
        hook = batch_hook(self.function, "process_element_batch", "process_element")
        self._batch_fn = hook if self.error_tag is None else None

    def open(self) -> None:
        """Create the read-only and writable contexts, then open the function."""
        timers = NonKeyedTimerService(self)
        self.ctx = FunctionContext(self, timers, None, self.broadcast)
        self.broadcast_ctx = FunctionContext(self, timers, None, self.broadcast, self._no_keys)
        super().open()

    def _no_keys(self, descriptor: StateDescriptor, function: Any) -> None:
        """A non-keyed operator has no keyed state: nothing to apply to."""

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process records of the non-broadcast input (in one call with a batch hook)."""
        if self._batch_fn is not None:
            self._run_batch(self._batch_fn, None, values, timestamps)
            return
        self._run(self.function.process_element, None, self.ctx, values, timestamps)

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process broadcast records."""
        fn = self.function.process_broadcast_element
        self._run(fn, None, self.broadcast_ctx, values, timestamps)

    def snapshot_state(self) -> Any:
        """The broadcast state (identical on every instance)."""
        return {"broadcast": {k: dict(v) for k, v in self.broadcast.tables.items()}}

    def restore_state(self, state: Any) -> None:
        """Load one instance's broadcast state."""
        snapshot = state[0] if isinstance(state, list) else state
        for name, table in snapshot["broadcast"].items():
            self.broadcast.tables.setdefault(name, {}).update(table)


class KeyedBroadcastProcessOperator(_KeyedTwoInput):
    """A keyed stream connected with a broadcast stream (``KeyedBroadcastProcessFunction``)."""

    def __init__(
        self,
        name: str,
        uid: str | None,
        function: Any,
        key_selector: Callable[[Any], Any],
        descriptors: list[MapStateDescriptor],
    ) -> None:
        super().__init__(name, uid, function, key_selector, None)
        self.broadcast = BroadcastStates(descriptors)
        self._batch_fn: Callable[..., Any] | None = None
        self._watermark_fn: Callable[..., Any] | None = None

    def bind(self) -> None:
        """Use the function's batch hooks, if it has them.

        Records come one by one when failing ones go to a side output; the watermark
        hook still runs then, so the state a batch-mode checkpoint left without per-key
        timers is cleaned up all the same.
        """
        batch = batch_hook(self.function, "process_keyed_batch", "process_element")
        if batch is None:
            self._batch_fn = self._watermark_fn = None
            return
        self._batch_fn = batch if self.error_tag is None else None
        self._watermark_fn = getattr(self.function, "on_watermark_batch", None)

    def open(self) -> None:
        """Create state, timers and contexts, then open the function."""
        self.open_keyed()
        timers = KeyedTimerService(self, self.backend, self.event_timers, self.processing_timers)
        self.ctx = FunctionContext(self, timers, self.backend, self.broadcast)
        self.timer_ctx = self.ctx
        self.broadcast_ctx = FunctionContext(
            self, timers, self.backend, self.broadcast, self._apply_to_keyed_state
        )
        super().open()

    def _apply_to_keyed_state(self, descriptor: StateDescriptor, function: Any) -> None:
        state = self.backend.get_state(descriptor)
        previous = self.backend.current_key
        try:
            for key in list(self.backend.keys(descriptor.name)):
                self.backend.current_key = key
                function(key, state)
        finally:
            self.backend.current_key = previous

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process keyed records under their keys, broadcast state read-only."""
        if self._batch_fn is not None:
            keys = list(map(self.key_selector1, values))
            self._run_batch(self._batch_fn, keys, values, timestamps)
            return
        fn = self.function.process_element
        self._run(fn, self.key_selector1, self.ctx, values, timestamps)

    def push2(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process broadcast records, broadcast state writable."""
        fn = self.function.process_broadcast_element
        self._run(fn, None, self.broadcast_ctx, values, timestamps)

    def advance_watermark(self, watermark: int) -> None:
        """Fire due timers, let the batch hook sweep, then forward the watermark."""
        self._fire(self.event_timers, watermark, TimeDomain.EVENT_TIME)
        hook = self._watermark_fn
        if hook is not None:
            collector = BatchCollector()
            try:
                hook(watermark, self.ctx, collector)
            except Exception as exc:
                raise self.failure(exc, f"on_watermark_batch({watermark})") from exc
            collector.flush(self.out)
        self.out.watermark(watermark)

    def snapshot_state(self) -> Any:
        """Keyed state, timers and the broadcast state."""
        snapshot = super().snapshot_state()
        snapshot["broadcast"] = {k: dict(v) for k, v in self.broadcast.tables.items()}
        return snapshot

    def restore_state(self, state: Any) -> None:
        """Load keyed state and one instance's broadcast state."""
        snapshots = state if isinstance(state, list) else [state]
        super().restore_state(snapshots)
        for name, table in snapshots[0]["broadcast"].items():
            self.broadcast.tables.setdefault(name, {}).update(table)
