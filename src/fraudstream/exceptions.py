"""The one error hierarchy of fraudstream, rooted in :class:`FraudstreamError`."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigurationError",
    "FraudstreamError",
    "InvalidRecordError",
    "JobFailedError",
    "RuleValidationError",
    "UnsupportedFeatureError",
]


class FraudstreamError(Exception):
    """Base class of every error fraudstream raises on purpose."""


class ConfigurationError(FraudstreamError, ValueError):
    """A job, source, sink or command was configured with a bad value."""


class UnsupportedFeatureError(FraudstreamError, NotImplementedError):
    """A PyFlink feature outside the subset fraudstream implements was used.

    The message names the feature and says what is supported instead, so a program
    fails at once rather than computing a silently different result.
    """

    def __init__(self, feature: str, supported: str) -> None:
        super().__init__(
            f"PyFlink feature {feature!r} is not supported by fraudstream; supported: {supported}"
        )
        self.feature = feature


class JobFailedError(FraudstreamError, RuntimeError):
    """A running job stopped because user code or a connector raised.

    Attributes:
        operator: name of the operator whose code raised.
        record: the record being processed, when there was one.
    """

    def __init__(self, message: str, operator: str = "", record: object = None) -> None:
        super().__init__(message)
        self.operator = operator
        self.record = record


class CheckpointError(FraudstreamError, RuntimeError):
    """A checkpoint could not be written, found or restored."""


class InvalidRecordError(FraudstreamError, ValueError):
    """A record from a source does not parse or validate; it goes to the dead letters.

    Attributes:
        reason: a short, human-readable reason naming the bad field or value.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RuleValidationError(FraudstreamError, ValueError):
    """A rule was refused; ``errors`` maps each bad field (camelCase) to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        detail = "; ".join(f"{field}: {msg}" for field, msg in errors.items())
        super().__init__(f"invalid rule: {detail}")
        self.errors = dict(errors)
