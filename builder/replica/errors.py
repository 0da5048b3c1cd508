"""Errors of the replica client.

Callers see `ReplicaError` subclasses only: `SourceUnavailable` when no source (the cache included)
has the data, `ModelNotFound` for a missing key, `ConfigError` for a bad setting. `SourceFailed` is
internal: one source failed, and the fallback chain moves on to the next one.
"""

from __future__ import annotations


class ReplicaError(RuntimeError):
    """Base class. A RuntimeError, as the existing library raises for a missing category or model."""


class ConfigError(ReplicaError, ValueError):
    """A constructor argument or environment variable holds a value the client cannot use."""


class SourceUnavailable(ReplicaError):
    """No source could provide the document and no good copy is on disk; `reasons` says why per source."""

    def __init__(self, what: str, reasons: list[str]):
        self.what = what
        self.reasons = list(reasons)
        detail = "; ".join(reasons) if reasons else "no source configured"
        super().__init__(f"{what}: no source available ({detail})")


class ModelNotFound(ReplicaError, KeyError):
    def __init__(self, category: str, key: str):
        self.category, self.key = category, key
        super().__init__(f"{category}: no model {key!r}")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class SourceFailed(Exception):
    """One source failed for one document. `transport` marks failures that say the source itself is
    unhealthy (connection refused, timeout, 5xx, 429), which open its circuit breaker."""

    def __init__(self, reason: str, transport: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.transport = transport
        self.retry_after = retry_after
