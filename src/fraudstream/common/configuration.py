"""``Configuration``: string-keyed settings, as in ``pyflink.common.Configuration``."""

from __future__ import annotations

from typing import Any

__all__ = ["Configuration"]


class Configuration:
    """A mutable map of configuration keys to values."""

    def __init__(self, other: Configuration | None = None) -> None:
        self._data: dict[str, Any] = dict(other._data) if other is not None else {}

    def set_string(self, key: str, value: str) -> Configuration:
        """Set ``key`` to a string value."""
        self._data[key] = str(value)
        return self

    def get_string(self, key: str, default_value: str) -> str:
        """The string value of ``key``, or ``default_value``."""
        return str(self._data.get(key, default_value))

    def set_integer(self, key: str, value: int) -> Configuration:
        """Set ``key`` to an integer value."""
        self._data[key] = int(value)
        return self

    def get_integer(self, key: str, default_value: int) -> int:
        """The integer value of ``key``, or ``default_value``."""
        return int(self._data.get(key, default_value))

    def set_boolean(self, key: str, value: bool) -> Configuration:
        """Set ``key`` to a boolean value."""
        self._data[key] = bool(value)
        return self

    def get_boolean(self, key: str, default_value: bool) -> bool:
        """The boolean value of ``key``, or ``default_value``."""
        value = self._data.get(key, default_value)
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return bool(value)

    def contains_key(self, key: str) -> bool:
        """Whether ``key`` is set."""
        return key in self._data

    def key_set(self) -> set[str]:
        """All keys that are set."""
        return set(self._data)

    def to_dict(self) -> dict[str, str]:
        """All settings as strings."""
        return {k: str(v) for k, v in self._data.items()}

    def __repr__(self) -> str:
        return f"Configuration({self._data!r})"
