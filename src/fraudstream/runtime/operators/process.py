"""Operators running one-input user functions: map, flat_map, filter, process, reduce."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any, cast

from fraudstream.datastream.output_tag import OutputTag
from fraudstream.datastream.state import ValueState, ValueStateDescriptor
from fraudstream.datastream.time_domain import TimeDomain
from fraudstream.exceptions import JobFailedError
from fraudstream.runtime.operators.base import Operator, Timestamps
from fraudstream.runtime.operators.contexts import (
    FunctionContext,
    KeyedTimerService,
    NonKeyedTimerService,
    OperatorRuntimeContext,
)
from fraudstream.runtime.operators.emit import BatchCollector
from fraudstream.runtime.operators.keyed import KeyedSupport

__all__ = [
    "FilterOperator",
    "FlatMapOperator",
    "KeyedProcessOperator",
    "KeyedReduceOperator",
    "MapOperator",
    "ProcessOperator",
    "UserFunctionOperator",
]


def _short(record: Any, limit: int = 300) -> str:
    text = repr(record)
    return text if len(text) <= limit else text[:limit] + "..."


class UserFunctionOperator(Operator):
    """An operator that runs user code; failures name the operator and the record.

    With ``error_tag`` set, a record whose processing raises goes to that side output
    as ``(record, error message)`` and the operator carries on with the next record.
    """

    def __init__(self, name: str, uid: str | None, function: Any) -> None:
        super().__init__(name, uid)
        self.function = function
        self.error_tag: str | None = None

    def bind(self) -> None:
        """Look up the methods of ``function`` the hot path calls (after copies are made)."""

    def open(self) -> None:
        """Bind and open the user function with a runtime context."""
        self.bind()
        open_fn = getattr(self.function, "open", None)
        if open_fn is not None:
            self.call_user(open_fn, OperatorRuntimeContext(self, self.backend_or_none()))

    def backend_or_none(self) -> Any:
        """The keyed state backend, if this operator is keyed."""
        return None

    def close(self) -> None:
        """Close the user function."""
        close_fn = getattr(self.function, "close", None)
        if close_fn is not None:
            self.call_user(close_fn)

    def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call user code outside the per-record path, wrapping failures."""
        try:
            return fn(*args)
        except JobFailedError:
            raise
        except Exception as exc:
            raise self.failure(exc, None) from exc

    def failure(self, exc: BaseException, record: Any, has_record: bool = False) -> JobFailedError:
        """The error that stops the job, naming this operator and the record."""
        where = f" on record {_short(record)}" if has_record or record is not None else ""
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return JobFailedError(
            f"operator {self.display_name!r} failed{where}: {detail}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            operator=self.display_name,
            record=record,
        )

    def run_guarded(
        self,
        values: list[Any],
        timestamps: Timestamps,
        batch: Callable[[list[Any], Timestamps], None],
        exc: Exception,
        failed: Any,
    ) -> None:
        """After ``batch`` raised on ``failed``: stop the job, or divert and carry on."""
        if isinstance(exc, JobFailedError):
            raise exc
        if self.error_tag is None:
            raise self.failure(exc, failed, True) from exc
        # Slow path: find the failing record, divert it, continue with the rest one by one.
        position = next(i for i, v in enumerate(values) if v is failed)
        stamp = None if timestamps is None else [timestamps[position]]
        self.out.emit_side(self.error_tag, [(failed, f"{type(exc).__name__}: {exc}")], stamp)
        for i in range(position + 1, len(values)):
            single_ts = None if timestamps is None else [timestamps[i]]
            try:
                batch([values[i]], single_ts)
            except Exception as again:
                if isinstance(again, JobFailedError):
                    raise
                self.out.emit_side(
                    self.error_tag,
                    [(values[i], f"{type(again).__name__}: {again}")],
                    single_ts,
                )


class MapOperator(UserFunctionOperator):
    """``map``: one output per input."""

    def __init__(self, name: str, uid: str | None, function: Any) -> None:
        super().__init__(name, uid, function)
        self._fn: Callable[[Any], Any] = getattr(function, "map", function)

    def bind(self) -> None:
        """Call the (possibly copied) function's ``map``."""
        self._fn = getattr(self.function, "map", self.function)

    def _batch(self, values: list[Any], timestamps: Timestamps) -> None:
        fn = self._fn
        self.out.emit([fn(v) for v in values], timestamps)

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Map the batch."""
        fn = self._fn
        value = None
        result: list[Any] = []
        try:
            append = result.append
            for value in values:
                append(fn(value))
        except Exception as exc:
            self.out.emit(result, None if timestamps is None else timestamps[: len(result)])
            self.run_guarded(values, timestamps, self._batch, exc, value)
            return
        self.out.emit(result, timestamps)


class FilterOperator(UserFunctionOperator):
    """``filter``: keeps records for which the function is true."""

    def __init__(self, name: str, uid: str | None, function: Any) -> None:
        super().__init__(name, uid, function)
        self._fn: Callable[[Any], Any] = getattr(function, "filter", function)

    def bind(self) -> None:
        """Call the (possibly copied) function's ``filter``."""
        self._fn = getattr(self.function, "filter", self.function)

    def _batch(self, values: list[Any], timestamps: Timestamps) -> None:
        fn = self._fn
        if timestamps is None:
            self.out.emit([v for v in values if fn(v)], None)
        else:
            kept = [(v, t) for v, t in zip(values, timestamps) if fn(v)]
            self.out.emit([v for v, _ in kept], [t for _, t in kept])

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Filter the batch."""
        try:
            self._batch(values, timestamps)
        except Exception as exc:
            # Rerun record by record so the failing one is known exactly.
            self._rerun(values, timestamps, exc)

    def _rerun(self, values: list[Any], timestamps: Timestamps, exc: Exception) -> None:
        fn = self._fn
        for i, value in enumerate(values):
            try:
                fn(value)
            except Exception as failure:
                self._batch(values[:i], None if timestamps is None else timestamps[:i])
                self.run_guarded(values, timestamps, self._batch, failure, value)
                return
        raise self.failure(exc, None) from exc


class FlatMapOperator(UserFunctionOperator):
    """``flat_map``: zero or more outputs per input."""

    def __init__(self, name: str, uid: str | None, function: Any) -> None:
        super().__init__(name, uid, function)
        self._fn: Callable[[Any], Any] = getattr(function, "flat_map", function)

    def bind(self) -> None:
        """Call the (possibly copied) function's ``flat_map``."""
        self._fn = getattr(self.function, "flat_map", self.function)

    def _batch(self, values: list[Any], timestamps: Timestamps) -> None:
        fn = self._fn
        if timestamps is None:
            result: list[Any] = []
            for value in values:
                produced = fn(value)
                if produced is not None:
                    result.extend(produced)
            self.out.emit(result, None)
        else:
            out_values: list[Any] = []
            out_ts: list[int] = []
            for value, ts in zip(values, timestamps):
                produced = fn(value)
                if produced is not None:
                    for item in produced:
                        out_values.append(item)
                        out_ts.append(ts)
            self.out.emit(out_values, out_ts)

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Flat-map the batch, record by record on failure."""
        try:
            self._batch(values, timestamps)
        except Exception as exc:
            self._one_by_one(values, timestamps, exc)

    def _one_by_one(self, values: list[Any], timestamps: Timestamps, first: Exception) -> None:
        for i, value in enumerate(values):
            single_ts = None if timestamps is None else [timestamps[i]]
            try:
                self._probe(value)
            except Exception as exc:
                self.run_guarded(values, timestamps, self._batch, exc, value)
                return
            self._batch([value], single_ts)
        raise self.failure(first, None) from first

    def _probe(self, value: Any) -> None:
        produced = self._fn(value)
        if produced is not None:
            list(produced)


class ProcessOperator(UserFunctionOperator):
    """``process`` on a non-keyed stream: a ``ProcessFunction``, no keyed state or timers."""

    def __init__(self, name: str, uid: str | None, function: Any) -> None:
        super().__init__(name, uid, function)
        self._fn: Callable[..., Any] = function.process_element
        self.ctx = FunctionContext(self, NonKeyedTimerService(self))
        self._collector = BatchCollector()

    def bind(self) -> None:
        """Call the (possibly copied) function's ``process_element``."""
        self._fn = self.function.process_element

    def _batch(self, values: list[Any], timestamps: Timestamps) -> None:
        fn, ctx, collector = self._fn, self.ctx, self._collector
        stamps = timestamps if timestamps is not None else [None] * len(values)
        for value, ts in zip(values, stamps):
            ctx.ts = ts
            collector.add(fn(value, ctx), ts)
        collector.flush(self.out)

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Process the batch."""
        fn, ctx, collector = self._fn, self.ctx, self._collector
        stamps = timestamps if timestamps is not None else [None] * len(values)
        value = None
        try:
            for value, ts in zip(values, stamps):
                ctx.ts = ts
                collector.add(fn(value, ctx), ts)
        except Exception as exc:
            collector.flush(self.out)
            self.run_guarded(values, timestamps, self._batch, exc, value)
            return
        collector.flush(self.out)


class KeyedProcessOperator(KeyedSupport, UserFunctionOperator):
    """``process`` on a keyed stream: a ``KeyedProcessFunction`` with state and timers."""

    def __init__(
        self, name: str, uid: str | None, function: Any, key_selector: Callable[[Any], Any]
    ) -> None:
        UserFunctionOperator.__init__(self, name, uid, function)
        KeyedSupport.__init__(self)
        self.key_selector = key_selector
        self._fn: Callable[..., Any] = function.process_element
        self._on_timer: Callable[..., Any] | None = getattr(function, "on_timer", None)

    def bind(self) -> None:
        """Call the (possibly copied) function's ``process_element`` and ``on_timer``."""
        self._fn = self.function.process_element
        self._on_timer = getattr(self.function, "on_timer", None)

    def open(self) -> None:
        """Create the state backend and timers, then open the function."""
        self.open_keyed()
        self.ctx = FunctionContext(
            self,
            KeyedTimerService(self, self.backend, self.event_timers, self.processing_timers),
            self.backend,
        )
        UserFunctionOperator.open(self)

    def _batch(self, values: list[Any], timestamps: Timestamps) -> None:
        self.push1(values, timestamps, guarded=False)

    def push1(self, values: list[Any], timestamps: Timestamps, guarded: bool = True) -> None:
        """Process the batch: set the key, call ``process_element``, collect what it yields."""
        backend = self.backend
        key_of = self.key_selector
        fn = self._fn
        ctx = self.ctx
        out_values: list[Any] = []
        append = out_values.append
        side: BatchCollector | None = None
        value = None
        try:
            if timestamps is None:
                ctx.ts = None
                for value in values:
                    backend.current_key = key_of(value)
                    result = fn(value, ctx)
                    if result is not None:
                        for item in result:
                            if (
                                item.__class__ is tuple
                                and len(item) == 2
                                and (item[0].__class__ is OutputTag)
                            ):
                                side = side or BatchCollector()
                                side.add_side(item[0].tag_id, item[1], None)
                            else:
                                append(item)
                self.out.emit(out_values, None)
            else:
                out_ts: list[int] = []
                for value, ts in zip(values, timestamps):
                    backend.current_key = key_of(value)
                    ctx.ts = ts
                    result = fn(value, ctx)
                    if result is not None:
                        for item in result:
                            if (
                                item.__class__ is tuple
                                and len(item) == 2
                                and (item[0].__class__ is OutputTag)
                            ):
                                side = side or BatchCollector()
                                side.add_side(item[0].tag_id, item[1], ts)
                            else:
                                append(item)
                                out_ts.append(ts)
                self.out.emit(out_values, out_ts)
        except Exception as exc:
            if not guarded:
                raise
            done = len(out_values)
            self.out.emit(out_values, None if timestamps is None else out_ts[:done])
            if side is not None:
                side.flush(self.out)
            self.run_guarded(values, timestamps, self._batch, exc, value)
            return
        if side is not None:
            side.flush(self.out)

    def invoke_timer(self, timestamp: int, domain: TimeDomain, collector: BatchCollector) -> None:
        """Call ``on_timer`` for a firing timer (key already set by the caller)."""
        if self._on_timer is None:
            return
        ctx = self.ctx
        ctx.ts = timestamp
        ctx.domain = domain
        try:
            collector.add(
                self._on_timer(timestamp, ctx),
                timestamp if domain is TimeDomain.EVENT_TIME else None,
            )
        except Exception as exc:
            raise self.failure(
                exc, f"on_timer({timestamp}) for key {self.backend.current_key!r}"
            ) from exc
        finally:
            ctx.domain = None


class KeyedReduceOperator(KeyedSupport, UserFunctionOperator):
    """Rolling ``reduce`` on a keyed stream: emits the running reduction per record."""

    def __init__(
        self,
        name: str,
        uid: str | None,
        function: Any,
        key_selector: Callable[[Any], Any],
    ) -> None:
        UserFunctionOperator.__init__(self, name, uid, function)
        KeyedSupport.__init__(self)
        self.key_selector = key_selector
        self._fn: Callable[[Any, Any], Any] = getattr(function, "reduce", function)

    def bind(self) -> None:
        """Call the (possibly copied) function's ``reduce``."""
        self._fn = getattr(self.function, "reduce", self.function)

    def open(self) -> None:
        """Create the state backend, then open the function."""
        self.open_keyed()
        self._state = cast(
            "ValueState[Any]", self.backend.get_state(ValueStateDescriptor("__reduce__"))
        )
        UserFunctionOperator.open(self)

    def push1(self, values: list[Any], timestamps: Timestamps) -> None:
        """Reduce each record into its key's running value and emit that value."""
        backend, state = self.backend, self._state
        key_of, fn = self.key_selector, self._fn
        result: list[Any] = []
        value = None
        try:
            for value in values:
                backend.current_key = key_of(value)
                current = state.value()
                reduced = value if current is None else fn(current, value)
                state.update(reduced)
                result.append(reduced)
        except Exception as exc:
            raise self.failure(exc, value, True) from exc
        self.out.emit(result, timestamps)
