"""``Row`` and ``RowKind``, as in ``pyflink.common.types``."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Any

__all__ = ["Row", "RowKind"]


class RowKind(Enum):
    """The change a row describes; streams of the DataStream API carry INSERT."""

    INSERT = 0
    UPDATE_BEFORE = 1
    UPDATE_AFTER = 2
    DELETE = 3

    def short_string(self) -> str:
        """The short form Flink prints before a row: ``+I``, ``-U``, ``+U`` or ``-D``."""
        return ("+I", "-U", "+U", "-D")[self.value]


class Row:
    """A row of positional values, optionally with field names (``pyflink.common.Row``).

    ``Row(1, "a")`` has positional fields; ``Row(id=1, name="a")`` has named ones,
    reachable as ``row.id`` or ``row["id"]``. A row is also a sequence.
    """

    __slots__ = ("_fields", "_kind", "_values")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("Row takes positional values or named values, not both")
        if kwargs:
            self._fields: list[str] | None = list(kwargs)
            self._values: list[Any] = list(kwargs.values())
        else:
            self._fields = None
            self._values = list(args)
        self._kind = RowKind.INSERT

    def as_dict(self, recursive: bool = False) -> dict[str, Any]:
        """The named fields as a dict; positional rows have no names, so this raises."""
        if self._fields is None:
            raise TypeError("as_dict() needs a Row with field names")
        if not recursive:
            return dict(zip(self._fields, self._values))
        return {
            name: value.as_dict(True) if isinstance(value, Row) and value._fields else value
            for name, value in zip(self._fields, self._values)
        }

    def get_row_kind(self) -> RowKind:
        """The row's change kind."""
        return self._kind

    def set_row_kind(self, row_kind: RowKind) -> None:
        """Set the row's change kind."""
        self._kind = row_kind

    def set_field_names(self, field_names: list[str]) -> None:
        """Name the fields of a positional row."""
        if len(field_names) != len(self._values):
            raise ValueError(f"{len(field_names)} names for a row of {len(self._values)} fields")
        self._fields = list(field_names)

    def get_fields_by_names(self, names: list[str]) -> list[Any]:
        """The values of the named fields, in the order asked."""
        return [self[name] for name in names]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fields = object.__getattribute__(self, "_fields")
        if fields is None or name not in fields:
            raise AttributeError(f"Row has no field {name!r}")
        return object.__getattribute__(self, "_values")[fields.index(name)]

    def __getitem__(self, item: int | str | slice) -> Any:
        if isinstance(item, str):
            if self._fields is None or item not in self._fields:
                raise KeyError(item)
            return self._values[self._fields.index(item)]
        return self._values[item]

    def __setitem__(self, index: int, value: Any) -> None:
        self._values[index] = value

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return (
            self._values == other._values
            and self._fields == other._fields
            and self._kind == other._kind
        )

    def __hash__(self) -> int:
        return hash((tuple(self._values), self._kind))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_row, (self._fields, self._values, self._kind))

    def __repr__(self) -> str:
        if self._fields is None:
            return "Row(" + ", ".join(repr(v) for v in self._values) + ")"
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self._values))
        return f"Row({inner})"


def _rebuild_row(fields: list[str] | None, values: list[Any], kind: RowKind) -> Row:
    row = Row(*values)
    row._fields = fields
    row._kind = kind
    return row
