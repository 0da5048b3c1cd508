"""`hmr get` and `hmr source-info`: the replica client from the shell (registered lazily by builder.cli).

Configuration comes from the environment, exactly as for the Python API (README, "Replica client").
The commands raise the client's errors (all `HmrError`); the root group prints them as one line, or
with `--debug` as a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
import orjson

if TYPE_CHECKING:
    from builder.replica.client import ReplicaClient


def _dump(value: object) -> None:
    from builder.replica.api import thaw

    sys.stdout.buffer.write(orjson.dumps(thaw(value), option=orjson.OPT_INDENT_2) + b"\n")


@click.command()
@click.argument("category")
@click.option("--legacy", is_flag=True, help="Print the v1 (legacy format) document instead of v2.")
@click.option("--model", "model_key", metavar="KEY", help="Print only this model's record.")
@click.option("--offline", is_flag=True, default=None, help="Read only the cache (HORDE_MODEL_REFERENCE_OFFLINE).")
@click.option("--refresh", is_flag=True, help="Check the sources now, ignoring the TTL.")
def get(category: str, legacy: bool, model_key: str | None, offline: bool | None, refresh: bool) -> None:
    """Print a category (or one model of it) as JSON, from the CDN, a mirror, GitHub or the cache."""
    from builder.replica.client import ReplicaClient
    from builder.replica.errors import ModelNotFound

    with ReplicaClient(offline=offline or None) as client:
        if not legacy:
            records = client.get_model_reference(category, overwrite_existing=refresh)
            _dump(records if model_key is None else client.get_model(category, model_key))
        elif model_key is None:
            raw = client.get_legacy(category, overwrite_existing=refresh)
            sys.stdout.buffer.write(raw if raw.endswith(b"\n") else raw + b"\n")
        else:
            doc = orjson.loads(client.get_legacy(category, overwrite_existing=refresh))
            if model_key not in doc:
                raise ModelNotFound(f"{category} (legacy)", model_key)
            _dump(doc[model_key])
        _note_fallback(client, category, legacy)


def _note_fallback(client: ReplicaClient, category: str, legacy: bool) -> None:
    """One line on stderr when the data did not come from the CDN, so a shell user knows."""
    from builder.replica.api import category_of

    info = client.source_info()["legacy" if legacy else "categories"].get(category_of(category).name) or {}
    if info.get("fallback_reason") or info.get("source") not in (None, "cdn"):
        click.echo(f"note: served from {info.get('source')} ({info.get('url')}); "
                   f"reason: {info.get('fallback_reason') or 'offline'}", err=True)


@click.command("source-info")
def source_info() -> None:
    """Print which source, generation and commit the cache holds, and why a fallback happened (no network)."""
    from builder.replica.client import ReplicaClient

    with ReplicaClient() as client:
        _dump(client.source_info())
