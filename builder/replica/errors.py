"""Errors of the replica client: the `ReplicaError` branch of `builder.errors`, and the typed failures of
one source that the fallback chain catches.

What callers see (all `ReplicaError`)::

    ReplicaError            builder.errors (also RuntimeError)
    ├── SourceUnavailable   no source, the cache included, has the document: .reasons
    ├── ModelNotFound       no such model (also KeyError): .category, .key
    ├── ConfigError         a client setting is unusable (also builder.errors.ConfigError, ValueError)
    └── CategoryError       not a category, or one without the document asked for (also ValueError)

What one source can fail with (the chain records it in `fallback_reason` and moves on; it never reaches
a caller)::

    FetchError              builder.errors: .url, .status
    └── FetchFailed         what every fetcher raises: .retry_after; .unhealthy opens the breaker
    TrustError              builder.errors: what was fetched is not trustworthy
    ├── ManifestError       the manifest is not the shape `hmr build` writes, or lacks the document
    ├── RollbackError       the manifest's generation is lower than the one already accepted
    ├── DigestMismatch      a document's size or sha256 differs from the manifest's
    ├── DocumentError       a document is not a JSON object of records (or a legacy file cannot be converted)
    ├── ShrinkRefused       a document holds no model, or far fewer than the copy already held
    └── SignatureError      builder.errors: the manifest's signature is missing, malformed or untrusted
    SourceSkipped           the source was not asked: its circuit is open, or it failed earlier in this refresh
"""

from __future__ import annotations

from builder.errors import FetchError, ModelNotFound, ReplicaError, SignatureError, SourceUnavailable, TrustError
from builder.errors import ReplicaConfigError as ConfigError

__all__ = [
    "CategoryError",
    "ConfigError",
    "DigestMismatch",
    "DocumentError",
    "ExpiredManifest",
    "FetchError",
    "FetchFailed",
    "ManifestError",
    "ModelNotFound",
    "QueryError",
    "ReplicaError",
    "RollbackError",
    "ShrinkRefused",
    "SignatureError",
    "SourceFailure",
    "SourceSkipped",
    "SourceUnavailable",
    "TrustError",
]


class CategoryError(ReplicaError, ValueError):
    """`category` names no category, or one that has no document of the kind asked for (no v1 format)."""


class QueryError(ReplicaError, ValueError):
    """A query names a field the category's records do not have, an unknown operator or backend, or
    asks for an order or a grouping its values cannot give (a ValueError, as in the old client)."""


class FetchFailed(FetchError):
    """A fetch failed, whatever the transport: `status` is the HTTP status of an answer other than 200
    (or 304 to a conditional request), None for a transport failure (refused, timeout, truncated or
    oversized body). `retry_after` is the server's Retry-After in seconds (429/503), if it sent one."""

    def __init__(self, message: str, url: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, url, status)
        self.retry_after = retry_after

    @property
    def unhealthy(self) -> bool:
        """The source itself is failing (transport failure, 5xx, 429), not just this document: the
        chain skips it for the rest of the refresh and opens its circuit breaker."""
        return self.status is None or self.status >= 500 or self.status == 429


class ManifestError(TrustError):
    """The manifest is not JSON, lacks the shape `hmr build` writes (files table, generation), or does
    not list the document asked for."""


class RollbackError(TrustError):
    """The manifest's generation is lower than the generation already accepted (an older build)."""

    def __init__(self, generation: int, accepted: int):
        self.generation, self.accepted = generation, accepted
        super().__init__(f"manifest generation {generation} is lower than the cached {accepted}: refused")


class ExpiredManifest(TrustError):
    """A manifest that must be signed expired longer ago than the grace period (a frozen site, or a
    replay of an old signed manifest)."""


class DigestMismatch(TrustError):
    """A document's size or sha256 differs from what the manifest lists (truncated, stale or tampered)."""


class DocumentError(TrustError):
    """A document is not a JSON object of records, or a legacy file cannot be converted to one."""


class ShrinkRefused(TrustError):
    """A document holds no model, or far fewer than the copy the client already serves."""


class SourceSkipped(ReplicaError):
    """The source was not asked: its circuit breaker is open, or it already failed in this refresh.
    A skip is not a new failure of the source, so it never extends the breaker."""


#: what one source may fail with: the fallback chain catches exactly these and moves on
SourceFailure = (FetchError, TrustError, SourceSkipped)
