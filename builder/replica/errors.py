"""Errors of the replica client: the `ReplicaError` branch of `builder.errors`, plus `SourceFailed`.

Callers see `ReplicaError` subclasses only: `SourceUnavailable` when no source (the cache included)
has the data, `ModelNotFound` for a missing key, `ConfigError` for a bad setting. `SourceFailed` is
internal: one source failed, and the fallback chain moves on to the next one.
"""

from __future__ import annotations

from builder.errors import ModelNotFound, ReplicaError, SourceUnavailable
from builder.errors import ReplicaConfigError as ConfigError

__all__ = ["ConfigError", "ModelNotFound", "ReplicaError", "SourceFailed", "SourceUnavailable"]


class SourceFailed(Exception):
    """One source failed for one document. `transport` marks failures that say the source itself is
    unhealthy (connection refused, timeout, 5xx, 429), which open its circuit breaker."""

    def __init__(self, reason: str, transport: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.transport = transport
        self.retry_after = retry_after
