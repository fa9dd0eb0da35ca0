"""Make ``import pyflink...`` resolve to fraudstream, so PyFlink programs run unchanged.

``activate()`` puts a finder first on ``sys.meta_path``. ``pyflink.datastream`` (and
every module under ``pyflink.common`` and ``pyflink.datastream``) becomes the very same
module object as its ``fraudstream`` counterpart, so classes compare identical. Parts of
PyFlink outside the supported subset fail at import with an error naming them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

from fraudstream.exceptions import UnsupportedFeatureError

__all__ = ["activate", "deactivate"]

_SUPPORTED = (
    "the DataStream API: pyflink.datastream (functions, state, connectors) and pyflink.common"
)
_ALIASES = {
    "pyflink.datastream.connectors.base": "fraudstream.connectors.base",
    "pyflink.common.watermark_strategy": "fraudstream.common.watermark_strategy",
}
_UNSUPPORTED = {
    "pyflink.table": "the Table API and SQL",
    "pyflink.datastream.window": "windows",
    "pyflink.datastream.formats": "PyFlink formats (use fraudstream.connectors codecs)",
    "pyflink.java_gateway": "the Java gateway (there is no JVM)",
    "pyflink.util": "PyFlink's Java utilities",
    "pyflink.fn_execution": "PyFlink's internal Beam runner",
    "pyflink.metrics": "metric groups (use the service's /metrics)",
}


def _target(fullname: str) -> str:
    if fullname in _ALIASES:
        return _ALIASES[fullname]
    return "fraudstream" + fullname[len("pyflink") :]


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """The target module is already executed."""


class _PyFlinkFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "pyflink" and not fullname.startswith("pyflink."):
            return None
        for prefix, feature in _UNSUPPORTED.items():
            if fullname == prefix or fullname.startswith(prefix + "."):
                raise UnsupportedFeatureError(f"{fullname} ({feature})", _SUPPORTED)
        if fullname not in ("pyflink",) and not fullname.startswith(
            ("pyflink.common", "pyflink.datastream")
        ):
            raise UnsupportedFeatureError(fullname, _SUPPORTED)
        module_name = _target(fullname)
        if importlib.util.find_spec(module_name) is None:
            raise UnsupportedFeatureError(fullname, _SUPPORTED)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module_name), is_package=True)


_FINDER = _PyFlinkFinder()


def activate() -> None:
    """From now on, ``import pyflink...`` imports fraudstream's implementation."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def deactivate() -> None:
    """Undo :func:`activate` and forget aliased modules."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n in sys.modules if n == "pyflink" or n.startswith("pyflink.")]:
        del sys.modules[name]
