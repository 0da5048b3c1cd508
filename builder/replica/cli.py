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


def _where(items: tuple[str, ...]) -> dict[str, object]:
    """`--where FIELD=VALUE` pairs: VALUE is read as JSON when it parses (false, 3, ["a","b"]), else as text."""
    out: dict[str, object] = {}
    for item in items:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            from builder.replica.errors import QueryError

            raise QueryError(f"--where {item!r}: not FIELD=VALUE")
        try:
            out[field] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out[field] = raw
    return out


@click.command()
@click.argument("category")
@click.option("--legacy", is_flag=True, help="Print the v1 (legacy format) document instead of v2.")
@click.option("--model", "model_key", metavar="KEY", help="Print only this model's record.")
@click.option("--offline", is_flag=True, default=None, help="Read only the cache (HORDE_MODEL_REFERENCE_OFFLINE).")
@click.option("--refresh", is_flag=True, help="Check the sources now, ignoring the TTL.")
@click.option("--nsfw/--sfw", "nsfw", default=None, help="Only NSFW (--nsfw) or only SFW (--sfw) models.")
@click.option("--baseline", metavar="NAME", help="Only models of this baseline (exact).")
@click.option("--inpainting/--no-inpainting", default=None, help="Only (or no) inpainting models.")
@click.option("--tag-any", "tags_any", multiple=True, metavar="TAG", help="Models with any of these tags (repeat).")
@click.option("--tag-all", "tags_all", multiple=True, metavar="TAG", help="Models with all of these tags (repeat).")
@click.option("--tag-none", "tags_none", multiple=True, metavar="TAG", help="Models with none of these tags (repeat).")
@click.option("--name-contains", metavar="TEXT", help="Models whose name contains TEXT (any case).")
@click.option("--backend", metavar="NAME", help="text_generation: only the entries of this backend (aphrodite, koboldcpp).")
@click.option("--exclude-backend-variations", is_flag=True, help="text_generation: drop the backend-prefixed entries.")
@click.option("--quantized/--no-quantized", default=None, help="text_generation: only (or no) quantised variants.")
@click.option("--where", "where", multiple=True, metavar="FIELD=VALUE",
              help="Field equality (FIELD__gt=..., __lt, __gte, __lte, __ne, __in, __contains; repeat).")
@click.option("--sort-by", metavar="FIELD", help="Sort by this field (records without it last).")
@click.option("--desc", is_flag=True, help="Sort descending.")
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many results.")
@click.option("--limit", type=click.IntRange(min=0), help="Return at most this many results.")
@click.option("--count", "count_only", is_flag=True, help="Print only the number of matching models.")
@click.option("--keys", "keys_only", is_flag=True, help="Print only the matching model keys (a JSON list).")
def get(category: str, legacy: bool, model_key: str | None, offline: bool | None, refresh: bool,
        nsfw: bool | None, baseline: str | None, inpainting: bool | None, tags_any: tuple[str, ...],
        tags_all: tuple[str, ...], tags_none: tuple[str, ...], name_contains: str | None, backend: str | None,
        exclude_backend_variations: bool, quantized: bool | None, where: tuple[str, ...], sort_by: str | None,
        desc: bool, offset: int | None, limit: int | None, count_only: bool, keys_only: bool) -> None:
    """Print a category (or one model of it) as JSON, from the CDN, a mirror, GitHub or the cache.

    Filters select models as the old API's search does (client.query()); CATEGORY `all` queries every
    category."""
    from builder.replica.client import ReplicaClient
    from builder.replica.errors import ModelNotFound, QueryError

    search = dict(nsfw=nsfw, baseline=baseline, inpainting=inpainting, tags_any=tags_any, tags_all=tags_all,
                  tags_none=tags_none, name_contains=name_contains, backend=backend,
                  exclude_backend_variations=exclude_backend_variations, quantized=quantized, sort_by=sort_by,
                  sort_desc=desc, offset=offset, limit=limit)
    filtering = (any(v is not None for v in (nsfw, baseline, inpainting, name_contains, backend, quantized, sort_by,
                                              offset, limit))
                 or bool(tags_any or tags_all or tags_none or where or exclude_backend_variations or desc
                         or count_only or keys_only))
    if filtering and (legacy or model_key):
        raise QueryError("filters, --count and --keys apply to v2 records: not with --legacy or --model")
    if category == "all" and not filtering:
        filtering = True
    with ReplicaClient(offline=offline or None) as client:
        if filtering:
            if refresh:
                client.refresh(None if category == "all" else [category])
            q = client.query_all() if category == "all" else client.query(category)
            q = q.where(**_where(where)).search(**search)  # type: ignore[arg-type]
            if count_only:
                click.echo(q.count())
            elif keys_only:
                _dump(q.keys())
            else:
                _dump(q.to_dict())
            if category != "all":
                _note_fallback(client, category, legacy)
            return
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
