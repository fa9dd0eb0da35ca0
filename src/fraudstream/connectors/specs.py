"""Connector specs as the command line writes them.

Examples: ``generator:rate=R,count=N``, ``jsonl:PATH``, ``kafka://HOST:PORT/TOPIC``,
``sqlite:PATH``, ``print``.

Each scheme maps to a factory in its own module, imported only when the scheme is used
(so ``fraudstream run`` never imports Kafka). A factory takes the parsed
:class:`ConnectorSpec` and a ``role`` (``"transactions"``, ``"rules"``, ``"alerts"``,
``"dead-letters"``, ...) that tells it which records it reads or writes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from fraudstream.exceptions import ConfigurationError

__all__ = [
    "SINK_SCHEMES",
    "SOURCE_SCHEMES",
    "ConnectorSpec",
    "make_sink",
    "make_source",
    "parse_spec",
]

#: scheme -> "module:function" of a source factory ``(spec, role) -> Source``.
SOURCE_SCHEMES: dict[str, str] = {
    "generator": "fraudstream.connectors.generator:generator_source",
    "jsonl": "fraudstream.connectors.files:jsonl_source",
    "csv": "fraudstream.connectors.files:csv_source",
}
#: scheme -> "module:function" of a sink factory ``(spec, role) -> Sink``.
SINK_SCHEMES: dict[str, str] = {
    "jsonl": "fraudstream.connectors.files:jsonl_sink",
    "csv": "fraudstream.connectors.files:csv_sink",
    "sqlite": "fraudstream.connectors.sqlite:sqlite_sink",
    "print": "fraudstream.connectors.files:print_sink",
}


@dataclass(frozen=True)
class ConnectorSpec:
    """A parsed connector spec.

    Attributes:
        scheme: ``generator``, ``jsonl``, ``kafka``...
        target: the path, ``HOST:PORT/TOPIC`` or empty.
        options: ``key=value`` options after a comma (``jsonl:out.jsonl,time-field=eventTime``).
        text: the spec as written, for error messages.
    """

    scheme: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def option(self, name: str, default: str | None = None) -> str | None:
        """An option's value, or ``default``."""
        return self.options.get(name, default)

    def int_option(self, name: str, default: int | None = None, minimum: int = 0) -> int | None:
        """An integer option, checked, with a clear error naming the spec."""
        raw = self.options.get(name)
        if raw is None:
            return default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ConfigurationError(
                f"{self.text!r}: option {name}={raw!r} is not an integer"
            ) from None
        if value < minimum:
            raise ConfigurationError(f"{self.text!r}: option {name} must be >= {minimum}")
        return value


def parse_spec(text: str) -> ConnectorSpec:
    """Parse ``scheme:target,key=value,...`` or ``scheme://target``; errors name the spec."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("empty connector spec")
    text = text.strip()
    if "://" in text:
        scheme, _, rest = text.partition("://")
        target, options = rest, ""
        if "?" in rest:
            target, _, options = rest.partition("?")
            options = options.replace("&", ",")
    elif ":" in text:
        scheme, _, rest = text.partition(":")
        target, _, options = rest.partition(",")
        if "=" in target:  # generator:rate=5,count=10 has no target, only options
            options = rest
            target = ""
    else:
        scheme, target, options = text, "", ""
    parsed: dict[str, str] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"{text!r}: option {item!r} is not key=value")
        parsed[key.strip()] = value.strip()
    scheme = scheme.strip().lower()
    if not scheme.replace("-", "").isalnum():
        raise ConfigurationError(f"{text!r}: bad connector scheme {scheme!r}")
    return ConnectorSpec(scheme, target, parsed, text)


def _factory(table: dict[str, str], kind: str, spec: ConnectorSpec) -> Any:
    location = table.get(spec.scheme)
    if location is None:
        known = ", ".join(sorted(table)) or "none"
        raise ConfigurationError(f"{spec.text!r}: unknown {kind} {spec.scheme!r} (known: {known})")
    module_name, _, function = location.partition(":")
    return getattr(importlib.import_module(module_name), function)


def make_source(text: str, role: str) -> Any:
    """Build the source a spec names (``role`` says what it reads)."""
    spec = parse_spec(text)
    return _factory(SOURCE_SCHEMES, "source", spec)(spec, role)


def make_sink(text: str, role: str) -> Any:
    """Build the sink a spec names (``role`` says what it writes)."""
    spec = parse_spec(text)
    return _factory(SINK_SCHEMES, "sink", spec)(spec, role)


SOURCE_SCHEMES["kafka"] = "fraudstream.connectors.kafka:source_from_spec"
SINK_SCHEMES["kafka"] = "fraudstream.connectors.kafka:sink_from_spec"
