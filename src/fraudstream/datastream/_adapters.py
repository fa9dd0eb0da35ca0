"""Adapters that turn the functions PyFlink accepts into what the operators call."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fraudstream.datastream._access import plain_access_equivalent
from fraudstream.datastream.functions import Function, KeyedProcessFunction, RuntimeContext

__all__ = ["KeyedFunctionAdapter", "as_key_selector", "require_callable", "require_method"]


def require_callable(func: Any, method: str, api: str) -> Any:
    """``func`` if it is a function object with ``method`` or a plain callable; else TypeError."""
    if callable(getattr(func, method, None)) or (callable(func) and not isinstance(func, Function)):
        return func
    raise TypeError(f"{api} expects a callable or an object with a {method}() method, got {func!r}")


def require_method(func: Any, methods: tuple[str, ...], api: str, expected: str) -> Any:
    """``func`` if it has every one of ``methods``; else TypeError naming what is expected."""
    missing = [m for m in methods if not callable(getattr(func, m, None))]
    if missing:
        raise TypeError(f"{api} expects a {expected}, got {func!r} (missing {', '.join(missing)})")
    return func


def as_key_selector(key_selector: Any) -> Callable[[Any], Any]:
    """The key-extracting callable of a ``KeySelector`` or plain callable.

    A lambda that only subscripts, reads an attribute or calls a method without
    arguments runs as its :mod:`operator` equivalent (:mod:`._access`).
    """
    require_callable(key_selector, "get_key", "key_by")
    get_key = getattr(key_selector, "get_key", None)
    if callable(get_key):
        return get_key  # type: ignore[no-any-return]
    return plain_access_equivalent(key_selector) or key_selector


class KeyedFunctionAdapter(KeyedProcessFunction):
    """Runs a map / flat_map / filter function on a keyed stream, where it may use keyed state."""

    def __init__(self, function: Any, kind: str) -> None:
        self.function = function
        self.kind = kind
        self._call: Callable[[Any], Any] = getattr(function, kind, function)

    def open(self, runtime_context: RuntimeContext) -> None:
        """Open the wrapped function with the keyed runtime context."""
        open_fn = getattr(self.function, "open", None)
        if open_fn is not None:
            open_fn(runtime_context)

    def close(self) -> None:
        """Close the wrapped function."""
        close_fn = getattr(self.function, "close", None)
        if close_fn is not None:
            close_fn()

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterable[Any]:
        """Apply the wrapped function."""
        if self.kind == "map":
            return (self._call(value),)
        if self.kind == "filter":
            return (value,) if self._call(value) else ()
        produced = self._call(value)
        return () if produced is None else produced
