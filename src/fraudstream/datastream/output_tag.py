"""``OutputTag``: names a side output of a process function."""

from __future__ import annotations

from fraudstream.common.typeinfo import TypeInformation, Types

__all__ = ["OutputTag"]


class OutputTag:
    """A side output, by id; a process function emits to it with ``yield tag, value``."""

    __slots__ = ("tag_id", "type_info")

    def __init__(self, tag_id: str, type_info: TypeInformation | None = None) -> None:
        if not isinstance(tag_id, str) or not tag_id:
            raise ValueError(f"OutputTag needs a non-empty string id, got {tag_id!r}")
        if type_info is not None and not isinstance(type_info, TypeInformation):
            raise TypeError(f"type_info must be a TypeInformation, got {type_info!r}")
        self.tag_id = tag_id
        self.type_info = type_info if type_info is not None else Types.PICKLED_BYTE_ARRAY()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputTag) and other.tag_id == self.tag_id

    def __hash__(self) -> int:
        return hash(self.tag_id)

    def __repr__(self) -> str:
        return f"OutputTag({self.tag_id!r})"
