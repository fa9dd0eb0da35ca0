"""Connector specs of files: ``jsonl:PATH``, ``csv:PATH`` and ``print`` (see the package)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fraudstream.connectors.codecs import DEFAULT_MAX_RECORD_BYTES
from fraudstream.connectors.files._sink import ConsoleSink, CsvSink, JsonLinesSink
from fraudstream.connectors.files._source import CsvSource, JsonLinesSource
from fraudstream.exceptions import ConfigurationError

__all__ = ["csv_sink", "csv_source", "jsonl_sink", "jsonl_source", "print_sink"]

_SOURCE_OPTIONS = {"time-field", "follow", "max-bytes", "header"}


def _flag(spec: Any, name: str, default: bool) -> bool:
    raw = spec.option(name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{spec.text!r}: option {name}={raw!r} must be true or false")


def _source_options(spec: Any, allowed: set[str]) -> dict[str, Any]:
    unknown = sorted(set(spec.options) - allowed)
    if unknown:
        raise ConfigurationError(
            f"{spec.text!r}: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(allowed))}"
        )
    if not spec.target:
        raise ConfigurationError(
            f"{spec.text!r}: give a file path, e.g. {spec.scheme}:input.{spec.scheme}"
        )
    return {
        "time_field": spec.option("time-field"),
        "follow": _flag(spec, "follow", False),
        "max_bytes": spec.int_option("max-bytes", DEFAULT_MAX_RECORD_BYTES, minimum=1),
    }


def _wrap(spec: Any, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except ConfigurationError as exc:
        message = str(exc)
        raise ConfigurationError(
            message if spec.text in message else f"{spec.text!r}: {message}"
        ) from None


def jsonl_source(spec: Any, role: str) -> JsonLinesSource:
    """``jsonl:PATH[,time-field=NAME][,follow=true][,max-bytes=N]``."""
    options = _source_options(spec, _SOURCE_OPTIONS - {"header"})
    return _wrap(spec, lambda: JsonLinesSource(spec.target, role=role, **options))  # type: ignore[no-any-return]


def csv_source(spec: Any, role: str) -> CsvSource:
    """``csv:PATH[,header=false][,time-field=NAME][,follow=true][,max-bytes=N]``."""
    options = _source_options(spec, _SOURCE_OPTIONS)
    header = _flag(spec, "header", True)
    return _wrap(spec, lambda: CsvSource(spec.target, role=role, header=header, **options))  # type: ignore[no-any-return]


def _sink_path(spec: Any) -> str:
    if spec.options:
        raise ConfigurationError(f"{spec.text!r}: file sinks take no options")
    if not spec.target:
        raise ConfigurationError(
            f"{spec.text!r}: give a file path, e.g. {spec.scheme}:out.{spec.scheme}"
        )
    return str(spec.target)


def jsonl_sink(spec: Any, role: str) -> JsonLinesSink:
    """``jsonl:PATH``: one JSON object per line, exactly once with checkpoints."""
    return _wrap(spec, lambda: JsonLinesSink(_sink_path(spec)))  # type: ignore[no-any-return]


def csv_sink(spec: Any, role: str) -> CsvSink:
    """``csv:PATH``: a header line, then one row per record, exactly once with checkpoints."""
    return _wrap(spec, lambda: CsvSink(_sink_path(spec)))  # type: ignore[no-any-return]


def print_sink(spec: Any, role: str) -> ConsoleSink:
    """``print`` (stdout) or ``print:stderr``: one JSON line per record, e.g. dead letters."""
    if spec.options:
        raise ConfigurationError(f"{spec.text!r}: print takes no options")
    return _wrap(spec, lambda: ConsoleSink(spec.target or "stdout"))  # type: ignore[no-any-return]
