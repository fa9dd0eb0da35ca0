"""Inside a Flink interpreter, make ``fraudstream.datastream``/``fraudstream.common`` PyFlink.

The mirror image of :mod:`fraudstream._pyflink_alias`. After :func:`use_pyflink`,
``fraudstream.datastream.functions`` *is* a module holding PyFlink's
``pyflink.datastream.functions`` names, so job code written against fraudstream's public
API builds a PyFlink job. A few engine-neutral constants that only fraudstream names are
added (``MAX_WATERMARK``/``MIN_WATERMARK``: Flink's ``Long.MAX_VALUE``/``MIN_VALUE``); anything
else that PyFlink lacks fails at import or attribute access, naming it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["ALIASED_PACKAGES", "use_embedded", "use_pyflink"]

#: The fraudstream packages that become PyFlink's.
ALIASED_PACKAGES = ("fraudstream.common", "fraudstream.datastream")

#: fraudstream-only names with the same meaning on Flink, per module.
_EXTRAS: dict[str, dict[str, Any]] = {
    "fraudstream.common.watermark_strategy": {
        "MAX_WATERMARK": 2**63 - 1,
        "MIN_WATERMARK": -(2**63),
    },
}


def _pyflink_name(fullname: str) -> str:
    return "pyflink" + fullname[len("fraudstream") :]


class _MirrorLoader(importlib.abc.Loader):
    """Builds ``fraudstream.X`` as a copy of ``pyflink.X``'s namespace (same objects)."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        try:
            target = importlib.import_module(_pyflink_name(spec.name))
        except ImportError as exc:
            raise ImportError(
                f"{spec.name} has no PyFlink counterpart ({_pyflink_name(spec.name)}): "
                "job code that runs on Flink may use only names PyFlink has",
                name=spec.name,
            ) from exc
        module = types.ModuleType(spec.name, target.__doc__)
        module.__dict__.update(
            {k: v for k, v in vars(target).items() if not k.startswith("__") or k == "__all__"}
        )
        module.__dict__.update(_EXTRAS.get(spec.name, {}))
        module.__path__ = []  # a package, so that submodules resolve through this finder
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the namespace is PyFlink's."""


class _ReverseFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if _aliased(fullname):
            return importlib.machinery.ModuleSpec(fullname, _MirrorLoader(), is_package=True)
        return None


_FINDER = _ReverseFinder()


def _aliased(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in ALIASED_PACKAGES)


#: fraudstream modules that hold no API objects, kept when the engine changes.
_ENGINE_FREE = ("fraudstream.flink", "fraudstream.exceptions", "fraudstream._pyflink_alias")


def _forget() -> None:
    """Forget the API modules and every fraudstream module that may hold their objects.

    Job modules bind API classes at import (``class X(KeyedProcessFunction)``), so after a
    switch they must be imported again. Objects made before the switch keep working; they
    pickle by module and name, so Flink's workers load the re-imported classes.
    """
    for name in list(sys.modules):
        if name.startswith("fraudstream.") and not any(
            name == keep or name.startswith(keep + ".") for keep in _ENGINE_FREE
        ):
            del sys.modules[name]


def use_pyflink() -> None:
    """From now on ``import fraudstream.datastream...`` (and ``.common``) imports PyFlink.

    Call it before job code is imported; fraudstream modules already imported with the
    embedded API are forgotten, so that later imports see PyFlink.
    """
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
        _forget()


def use_embedded() -> None:
    """Undo :func:`use_pyflink`."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
        _forget()
