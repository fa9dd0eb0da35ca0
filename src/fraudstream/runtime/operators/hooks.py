"""Finding a function's batch hook (:mod:`fraudstream.datastream.batch`) safely."""

from __future__ import annotations

from typing import Any

__all__ = ["batch_hook"]


def _defining_class(cls: type, name: str) -> type | None:
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def batch_hook(obj: Any, hook: str, per_record: str) -> Any:
    """``obj``'s bound ``hook`` method, or ``None`` where it would skip an override.

    ``None`` when ``obj`` has no such method, or when a class below the one that defines
    the hook overrides ``per_record``: the subclass meant its own per-record code to run.
    """
    method = getattr(obj, hook, None)
    if method is None:
        return None
    cls = type(obj)
    hook_owner = _defining_class(cls, hook)
    record_owner = _defining_class(cls, per_record)
    if hook_owner is None or record_owner is None:
        return method
    if record_owner is not hook_owner and issubclass(record_owner, hook_owner):
        return None
    return method
