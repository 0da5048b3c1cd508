"""The replica client: the model reference from the CDN (conditional, verified, cached on disk), with
mirrors, the legacy GitHub files and the last good copy as fallbacks. See README "Replica client".

    from builder.replica import ReplicaClient
    client = ReplicaClient()                       # configured from the environment
    image = client.get_model_reference("image_generation")
"""

from __future__ import annotations

from builder.replica.client import ReplicaClient, default_client, freeze, thaw
from builder.replica.config import GithubRepo, ReplicaConfig
from builder.replica.errors import ConfigError, ModelNotFound, ReplicaError, SourceUnavailable

__all__ = [
    "ConfigError",
    "GithubRepo",
    "ModelNotFound",
    "ReplicaClient",
    "ReplicaConfig",
    "ReplicaError",
    "SourceUnavailable",
    "default_client",
    "freeze",
    "thaw",
]
