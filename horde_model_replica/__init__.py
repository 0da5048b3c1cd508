"""The replica client's public import name (ADR 0006): what integrators import.

    from horde_model_replica import ReplicaClient
    client = ReplicaClient()                       # configured from the environment
    image = client.get_model_reference("image_generation")

The code lives in `builder.replica` beside the builder it shares the route table and record types with;
this name is the one that stays when that layout changes, so integrations never import `builder`.
Importing it loads `builder.replica` only: none of the build, publishing or contributor code.
"""

from __future__ import annotations

# every public name of the client, kept in step with it automatically
from builder.replica import *  # noqa: F403
from builder.replica import __all__ as _replica_all

__all__ = list(_replica_all)
