"""Serialization schemas and encoders, as in ``pyflink.common.serialization``."""

from __future__ import annotations

from typing import Any

__all__ = ["Encoder", "SimpleStringSchema"]


class SimpleStringSchema:
    """Records are UTF-8 strings (Kafka values, file lines)."""

    def __init__(self, charset: str = "UTF-8") -> None:
        self.charset = charset

    def serialize(self, value: Any) -> bytes:
        """``value`` as bytes."""
        return str(value).encode(self.charset)

    def deserialize(self, message: bytes) -> str:
        """The string in ``message``."""
        return message.decode(self.charset)


class Encoder:
    """Turns records into lines of a row-format file."""

    def __init__(self, charset: str = "UTF-8") -> None:
        self.charset = charset

    @staticmethod
    def simple_string_encoder(charset_name: str = "UTF-8") -> Encoder:
        """Each record as ``str(record)`` followed by a newline."""
        return Encoder(charset_name)

    def encode(self, value: Any) -> bytes:
        """``value`` as one line."""
        return (str(value) + "\n").encode(self.charset)
