"""The replica client: the model reference from the CDN (conditional, verified, cached on disk), with
mirrors, the legacy GitHub files and the last good copy as fallbacks. See README "Replica client".

    from builder.replica import ReplicaClient
    client = ReplicaClient()                       # configured from the environment
    image = client.get_model_reference("image_generation")

Modules, as python-tuf's ngclient is split: `fetcher` (transport only; `FetcherInterface` is the seam
tests plug an in-memory CDN into), `trust` (the rules a manifest and a document must pass; no I/O),
`state` (what `state.json` holds, typed), `cache` (the shared folder and its lock), `copies` (what the
client holds in memory and on disk), `sources` (where each source keeps a document), `convert` (the
legacy GitHub files to v2), `api` (the read API over the client's primitives), `query` (filter, sort
and page the records, as the old client's `query()`), `client` (the
fallback chain), `config` (settings and the environment), `cli` (`hmr get`, `hmr source-info`).
"""

from __future__ import annotations

from builder.replica.api import freeze, thaw
from builder.replica.client import ReplicaClient, default_client
from builder.replica.config import GithubRepo, ReplicaConfig
from builder.replica.errors import (
    CategoryError,
    ConfigError,
    FetchFailed,
    ModelNotFound,
    QueryError,
    ReplicaError,
    SourceUnavailable,
)
from builder.replica.fetcher import FetcherInterface, HttpxFetcher, Response, Validators

__all__ = [
    "CategoryError",
    "ConfigError",
    "FetchFailed",
    "FetcherInterface",
    "GithubRepo",
    "HttpxFetcher",
    "ModelNotFound",
    "QueryError",
    "ReplicaClient",
    "ReplicaConfig",
    "ReplicaError",
    "Response",
    "SourceUnavailable",
    "Validators",
    "default_client",
    "freeze",
    "thaw",
]
