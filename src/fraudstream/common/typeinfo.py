"""Type information, as in ``pyflink.common.typeinfo``.

fraudstream never needs type information to run fast: records are Python objects.
A declared type is used where it changes what a user sees: values are checked
when a collection is declared with a type, and ``print()`` formats typed records
the way Flink's Java runtime does (``(1,2)`` for tuples, ``+I[1, 2]`` for rows,
``1.0E7`` for large doubles), while untyped records print as Python's ``str``.
"""

from __future__ import annotations

import datetime
import decimal
import math
import struct
from collections.abc import Sequence
from typing import Any

from fraudstream.common.types import Row

__all__ = [
    "BasicArrayTypeInfo",
    "BasicTypeInfo",
    "ListTypeInfo",
    "MapTypeInfo",
    "PickledBytesTypeInfo",
    "RowTypeInfo",
    "TupleTypeInfo",
    "TypeInformation",
    "Types",
    "java_double_str",
    "java_float_str",
]


class TypeInformation:
    """The declared type of the records of a stream."""

    name = "TypeInformation"

    def check(self, value: Any) -> None:
        """Raise ``TypeError`` when ``value`` cannot be a value of this type."""

    def format(self, value: Any) -> str:
        """The text Flink's Java runtime prints for ``value`` of this type."""
        return _java_str(value)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name


class PickledBytesTypeInfo(TypeInformation):
    """Any Python object (PyFlink's default when no type is declared); printed with ``str``."""

    name = "PICKLED_BYTE_ARRAY"

    def format(self, value: Any) -> str:
        """Untyped records print as Python's ``str`` (PyFlink maps them to strings first)."""
        return str(value)


class BasicTypeInfo(TypeInformation):
    """A scalar type: string, boolean, integers, floating point, decimals, times."""

    def __init__(self, name: str, python_types: tuple[type, ...]) -> None:
        self.name = name
        self._python_types = python_types

    def check(self, value: Any) -> None:
        """Raise ``TypeError`` when ``value`` is not of this scalar type (``None`` is allowed)."""
        if value is None:
            return
        if isinstance(value, bool) and bool not in self._python_types:
            raise TypeError(f"{value!r} is a bool, expected {self.name}")
        if not isinstance(value, self._python_types):
            raise TypeError(f"{value!r} is a {type(value).__name__}, expected {self.name}")
        if self.name in _INT_RANGES:
            low, high = _INT_RANGES[self.name]
            if isinstance(value, int) and not low <= value <= high:
                raise TypeError(f"{value!r} is out of range for {self.name}")

    def format(self, value: Any) -> str:
        """Java's ``toString`` of the boxed value."""
        if value is None:
            return "null"
        if self.name == "DOUBLE":
            return java_double_str(float(value))
        if self.name == "FLOAT":
            return java_float_str(float(value))
        return _java_str(value)


_INT_RANGES = {
    "BYTE": (-(2**7), 2**7 - 1),
    "SHORT": (-(2**15), 2**15 - 1),
    "INT": (-(2**31), 2**31 - 1),
    "LONG": (-(2**63), 2**63 - 1),
}


class TupleTypeInfo(TypeInformation):
    """A fixed-arity tuple; printed as Flink prints ``TupleN``: ``(a,b,c)``."""

    def __init__(self, field_types: Sequence[TypeInformation]) -> None:
        self.field_types = list(field_types)
        self.name = "TUPLE<" + ", ".join(t.name for t in self.field_types) + ">"

    def check(self, value: Any) -> None:
        """Raise ``TypeError`` unless ``value`` is a sequence of the declared field types."""
        if not isinstance(value, (tuple, list, Row)):
            raise TypeError(f"{value!r} is a {type(value).__name__}, expected {self.name}")
        if len(value) != len(self.field_types):
            raise TypeError(f"{value!r} has {len(value)} fields, expected {len(self.field_types)}")
        for field_type, field in zip(self.field_types, value):
            field_type.check(field)

    def format(self, value: Any) -> str:
        """``(f0,f1,...)`` without spaces, fields formatted by their types."""
        return "(" + ",".join(t.format(v) for t, v in zip(self.field_types, value)) + ")"


class RowTypeInfo(TypeInformation):
    """A row with (optionally named) fields; printed as Flink prints rows: ``+I[a, b]``."""

    def __init__(
        self, field_types: Sequence[TypeInformation], field_names: Sequence[str] | None = None
    ) -> None:
        self.field_types = list(field_types)
        self.field_names = (
            list(field_names) if field_names else [f"f{i}" for i in range(len(field_types))]
        )
        if len(self.field_names) != len(self.field_types):
            raise ValueError(
                f"{len(self.field_names)} field names for {len(self.field_types)} field types"
            )
        inner = ", ".join(f"{n}: {t.name}" for n, t in zip(self.field_names, self.field_types))
        self.name = f"ROW<{inner}>"

    def get_field_names(self) -> list[str]:
        """The field names (``f0``, ``f1``, ... when none were given)."""
        return list(self.field_names)

    def get_field_types(self) -> list[TypeInformation]:
        """The field types."""
        return list(self.field_types)

    def check(self, value: Any) -> None:
        """Raise ``TypeError`` unless ``value`` is a row (or sequence) of the declared fields."""
        if not isinstance(value, (Row, tuple, list)):
            raise TypeError(f"{value!r} is a {type(value).__name__}, expected {self.name}")
        if len(value) != len(self.field_types):
            raise TypeError(f"{value!r} has {len(value)} fields, expected {len(self.field_types)}")
        for field_type, field in zip(self.field_types, value):
            field_type.check(field)

    def format(self, value: Any) -> str:
        """``+I[a, b]``: the row kind, then the fields formatted by their types."""
        kind = value.get_row_kind().short_string() if isinstance(value, Row) else "+I"
        return kind + "[" + ", ".join(t.format(v) for t, v in zip(self.field_types, value)) + "]"


class ListTypeInfo(TypeInformation):
    """A list of elements of one type; printed as Java prints a ``List``: ``[a, b]``."""

    def __init__(self, element_type: TypeInformation, name: str = "LIST") -> None:
        self.element_type = element_type
        self.name = f"{name}<{element_type.name}>"

    def check(self, value: Any) -> None:
        """Raise ``TypeError`` unless ``value`` is a list of the element type."""
        if value is None:
            return
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{value!r} is a {type(value).__name__}, expected {self.name}")
        for element in value:
            self.element_type.check(element)

    def format(self, value: Any) -> str:
        """``[a, b]`` with elements formatted by their type."""
        if value is None:
            return "null"
        return "[" + ", ".join(self.element_type.format(v) for v in value) + "]"


class BasicArrayTypeInfo(ListTypeInfo):
    """An array of a basic type (``BASIC_ARRAY``, ``PRIMITIVE_ARRAY``, ``OBJECT_ARRAY``)."""


class MapTypeInfo(TypeInformation):
    """A map; printed as Java prints a ``Map``: ``{k=v, k2=v2}``."""

    def __init__(self, key_type: TypeInformation, value_type: TypeInformation) -> None:
        self.key_type = key_type
        self.value_type = value_type
        self.name = f"MAP<{key_type.name}, {value_type.name}>"

    def check(self, value: Any) -> None:
        """Raise ``TypeError`` unless ``value`` is a dict of the declared key and value types."""
        if value is None:
            return
        if not isinstance(value, dict):
            raise TypeError(f"{value!r} is a {type(value).__name__}, expected {self.name}")
        for k, v in value.items():
            self.key_type.check(k)
            self.value_type.check(v)

    def format(self, value: Any) -> str:
        """``{k=v, k2=v2}`` with keys and values formatted by their types."""
        if value is None:
            return "null"
        inner = ", ".join(
            f"{self.key_type.format(k)}={self.value_type.format(v)}" for k, v in value.items()
        )
        return "{" + inner + "}"


_STRING = BasicTypeInfo("STRING", (str,))
_BOOLEAN = BasicTypeInfo("BOOLEAN", (bool,))
_BYTE = BasicTypeInfo("BYTE", (int,))
_SHORT = BasicTypeInfo("SHORT", (int,))
_INT = BasicTypeInfo("INT", (int,))
_LONG = BasicTypeInfo("LONG", (int,))
_FLOAT = BasicTypeInfo("FLOAT", (float, int))
_DOUBLE = BasicTypeInfo("DOUBLE", (float, int))
_CHAR = BasicTypeInfo("CHAR", (str,))
_BIG_INT = BasicTypeInfo("BIG_INT", (int,))
_BIG_DEC = BasicTypeInfo("BIG_DEC", (decimal.Decimal,))
_INSTANT = BasicTypeInfo("INSTANT", (datetime.datetime,))
_SQL_DATE = BasicTypeInfo("SQL_DATE", (datetime.date,))
_SQL_TIME = BasicTypeInfo("SQL_TIME", (datetime.time,))
_SQL_TIMESTAMP = BasicTypeInfo("SQL_TIMESTAMP", (datetime.datetime,))
_PICKLED = PickledBytesTypeInfo()


class Types:
    """Factories of type information, named as in ``pyflink.common.typeinfo.Types``."""

    @staticmethod
    def STRING() -> TypeInformation:
        """A string."""
        return _STRING

    @staticmethod
    def BOOLEAN() -> TypeInformation:
        """A boolean."""
        return _BOOLEAN

    @staticmethod
    def BYTE() -> TypeInformation:
        """An 8-bit signed integer."""
        return _BYTE

    @staticmethod
    def SHORT() -> TypeInformation:
        """A 16-bit signed integer."""
        return _SHORT

    @staticmethod
    def INT() -> TypeInformation:
        """A 32-bit signed integer."""
        return _INT

    @staticmethod
    def LONG() -> TypeInformation:
        """A 64-bit signed integer."""
        return _LONG

    @staticmethod
    def FLOAT() -> TypeInformation:
        """A 32-bit float."""
        return _FLOAT

    @staticmethod
    def DOUBLE() -> TypeInformation:
        """A 64-bit float."""
        return _DOUBLE

    @staticmethod
    def CHAR() -> TypeInformation:
        """A single character."""
        return _CHAR

    @staticmethod
    def BIG_INT() -> TypeInformation:
        """An integer of any size."""
        return _BIG_INT

    @staticmethod
    def BIG_DEC() -> TypeInformation:
        """A ``decimal.Decimal``."""
        return _BIG_DEC

    @staticmethod
    def INSTANT() -> TypeInformation:
        """A point in time."""
        return _INSTANT

    @staticmethod
    def SQL_DATE() -> TypeInformation:
        """A date."""
        return _SQL_DATE

    @staticmethod
    def SQL_TIME() -> TypeInformation:
        """A time of day."""
        return _SQL_TIME

    @staticmethod
    def SQL_TIMESTAMP() -> TypeInformation:
        """A date and time."""
        return _SQL_TIMESTAMP

    @staticmethod
    def PICKLED_BYTE_ARRAY() -> TypeInformation:
        """Any Python object."""
        return _PICKLED

    @staticmethod
    def TUPLE(field_types: list[TypeInformation]) -> TypeInformation:
        """A tuple of the given field types."""
        return TupleTypeInfo(field_types)

    @staticmethod
    def ROW(field_types: list[TypeInformation]) -> TypeInformation:
        """A row with fields ``f0``, ``f1``, ... of the given types."""
        return RowTypeInfo(field_types)

    @staticmethod
    def ROW_NAMED(field_names: list[str], field_types: list[TypeInformation]) -> TypeInformation:
        """A row with named fields."""
        return RowTypeInfo(field_types, field_names)

    @staticmethod
    def LIST(element_type_info: TypeInformation) -> TypeInformation:
        """A list of elements of one type."""
        return ListTypeInfo(element_type_info)

    @staticmethod
    def MAP(key_type_info: TypeInformation, value_type_info: TypeInformation) -> TypeInformation:
        """A map from keys of one type to values of another."""
        return MapTypeInfo(key_type_info, value_type_info)

    @staticmethod
    def BASIC_ARRAY(element_type: TypeInformation) -> TypeInformation:
        """An array of a basic type."""
        return BasicArrayTypeInfo(element_type, "BASIC_ARRAY")

    @staticmethod
    def PRIMITIVE_ARRAY(element_type: TypeInformation) -> TypeInformation:
        """An array of a primitive type."""
        return BasicArrayTypeInfo(element_type, "PRIMITIVE_ARRAY")

    @staticmethod
    def OBJECT_ARRAY(element_type: TypeInformation) -> TypeInformation:
        """An array of objects."""
        return BasicArrayTypeInfo(element_type, "OBJECT_ARRAY")


def _java_str(value: Any) -> str:
    """What Java's ``toString`` shows for a value that crossed into the JVM untouched."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return java_double_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_str(k)}={_java_str(v)}" for k, v in value.items()) + "}"
    return str(value)


def _scientific(digits: str, exponent: int) -> str:
    """Java's ``d.dddE±n`` form from significant digits and a decimal exponent."""
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{mantissa}E{exponent}"


def _shortest_digits(text: str) -> tuple[str, int]:
    """Significant digits and the exponent of the first one, from a shortest repr."""
    _sign, digit_tuple, exp = decimal.Decimal(text).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exp, int)
    return digits, exp + len(digits) - 1


def java_double_str(value: float) -> str:
    """``Double.toString``: plain notation in [1e-3, 1e7), else ``1.0E7`` style."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return _java_floating_str(value, repr(value))


def java_float_str(value: float) -> str:
    """``Float.toString``: like doubles, with the shortest digits that survive 32 bits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    single = struct.unpack("f", struct.pack("f", value))[0]
    text = repr(single)
    for precision in range(1, 10):
        candidate = f"{single:.{precision}g}"
        if struct.unpack("f", struct.pack("f", float(candidate)))[0] == single:
            text = candidate
            break
    return _java_floating_str(float(text), text)


def _java_floating_str(value: float, shortest: str) -> str:
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(shortest.lstrip("-"))
    if 1e-3 <= abs(value) < 1e7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            frac = digits[exponent + 1 :] or "0"
        else:
            whole = "0"
            frac = "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{frac}"
    return sign + _scientific(digits, exponent)
