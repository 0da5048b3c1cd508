"""`hmr get` and `hmr source-info`: the replica client from the shell (registered lazily by builder.cli).

Configuration comes from the environment, exactly as for the Python API (README, "Replica client").
"""

from __future__ import annotations

import sys

import click
import orjson


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _dump(value: object) -> None:
    from builder.replica.client import thaw

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
    from builder.replica.errors import ReplicaError

    try:
        with ReplicaClient(offline=offline or None) as client:
            if legacy:
                raw = client.get_legacy(category, overwrite_existing=refresh)
                if model_key is None:
                    out = raw if raw.endswith(b"\n") else raw + b"\n"
                    sys.stdout.buffer.write(out)
                else:
                    doc = orjson.loads(raw)
                    if model_key not in doc:
                        _fail(f"{category} (legacy): no model {model_key!r}")
                    _dump(doc[model_key])
            else:
                records = client.get_model_reference(category, overwrite_existing=refresh)
                if model_key is None:
                    _dump(records)
                else:
                    if model_key not in records:
                        _fail(f"{category}: no model {model_key!r}")
                    _dump(records[model_key])
            _warn_fallback(client, category, legacy)
    except (ReplicaError, ValueError) as e:
        _fail(str(e))


def _warn_fallback(client: object, category: str, legacy: bool) -> None:
    """One line on stderr when the data did not come from the CDN, so a shell user knows."""
    from builder.replica.client import ReplicaClient, _category

    assert isinstance(client, ReplicaClient)
    info = client.source_info()["legacy" if legacy else "categories"].get(_category(category).name) or {}
    if info.get("fallback_reason") or info.get("source") not in (None, "cdn"):
        click.echo(f"note: served from {info.get('source')} ({info.get('url')}); "
                   f"reason: {info.get('fallback_reason') or 'offline'}", err=True)


@click.command("source-info")
def source_info() -> None:
    """Print which source, generation and commit the cache holds, and why a fallback happened (no network)."""
    from builder.replica.client import ReplicaClient
    from builder.replica.errors import ReplicaError

    try:
        with ReplicaClient() as client:
            _dump(client.source_info())
    except ReplicaError as e:
        _fail(str(e))
