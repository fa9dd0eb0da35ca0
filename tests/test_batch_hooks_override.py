"""A subclass that overrides a per-record method but not its batch hook runs per record,
as on PyFlink: the inherited batch hook would silently skip the override."""

from __future__ import annotations

from typing import Any

from fraudstream.runtime.operators.hooks import batch_hook


class Base:
    def process_element(self, value: Any) -> str:
        return "base"

    def process_element_batch(self, values: list[Any]) -> str:
        return "batch"


class OverridesRecord(Base):
    def process_element(self, value: Any) -> str:
        return "mine"


class OverridesBoth(OverridesRecord):
    def process_element_batch(self, values: list[Any]) -> str:
        return "my batch"


class KeepsBoth(Base):
    pass


def hook(obj: Any) -> Any:
    return batch_hook(obj, "process_element_batch", "process_element")


def test_the_hook_is_used_where_it_is_as_specific_as_the_per_record_method() -> None:
    assert hook(Base())([]) == "batch"
    assert hook(KeepsBoth())([]) == "batch"
    assert hook(OverridesBoth())([]) == "my batch"


def test_an_override_of_the_per_record_method_turns_the_inherited_hook_off() -> None:
    assert hook(OverridesRecord()) is None


def test_an_object_without_the_hook_has_none() -> None:
    assert hook(object()) is None
