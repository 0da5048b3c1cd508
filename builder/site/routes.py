"""The route table: object key -> file in the site tree, content type, cache policy.

One table shared by `hmr build` (nginx config), `hmr serve` and `hmr deploy`, so a key resolves the
same way everywhere. The site tree holds each JSON document once as `<path>.json`; the table adds the
extensionless key (what the old API's clients request) and the v1 aliases of the old routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MUTABLE_CACHE = "public, max-age=60, stale-while-revalidate=600, stale-if-error=86400"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"

#: build-private files (the generated nginx config): written into the site tree, never an object key
PRIVATE_PREFIX = "_config/"

_V1 = "api/model_references/v1/"
#: v1 route aliases of the old API (same bytes, no redirect: the old client does not follow redirects)
V1_ALIASES = {
    _V1 + "image_generation.json": (_V1 + "stable_diffusion", _V1 + "stable_diffusion.json"),
    _V1 + "text_generation.json": (_V1 + "db.json",),
}
#: Query-string variants of the old API, which a static host cannot see: key -> (parameter, the key that
#: answers when the parameter is true). `hmr serve` honours them and the nginx config rewrites them;
#: a CDN needs the same rule (e.g. a Cloudflare Transform Rule). Truth values as FastAPI parses a bool.
QUERY_VARIANTS = {
    _V1 + "text_generation": ("include_group", _V1 + "text_generation.include_group.json"),
}
TRUE_VALUES = ("1", "true", "t", "yes", "y", "on")

_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".atom": "application/atom+xml",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".sig": "application/octet-stream",
    ".conf": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Route:
    key: str
    file: str
    content_type: str
    cache_control: str


def content_type(file: str) -> str:
    dot = file.rfind(".")
    return _TYPES.get(file[dot:], "application/octet-stream") if dot > file.rfind("/") else "application/json"


def cache_control(key: str) -> str:
    return IMMUTABLE_CACHE if key.startswith("snapshots/") else MUTABLE_CACHE


def routes(files: Iterable[str]) -> list[Route]:
    """Every object key of a site whose tree holds `files` (relative paths), in a stable order."""
    out: dict[str, Route] = {}

    def add(key: str, file: str) -> None:
        out.setdefault(key, Route(key, file, content_type(file), cache_control(key)))

    for f in sorted(files):
        if f.startswith(PRIVATE_PREFIX):
            continue
        add(f, f)
        if f.startswith(("api/", "snapshots/")) and f.endswith(".json"):
            add(f[: -len(".json")], f)
        for alias in V1_ALIASES.get(f, ()):
            add(alias, f)
    return list(out.values())


def route_map(files: Iterable[str]) -> dict[str, Route]:
    return {r.key: r for r in routes(files)}


def query_variant(key: str, query: str) -> str | None:
    """The file key that answers `key?query` when the query selects a variant (see QUERY_VARIANTS)."""
    variant = QUERY_VARIANTS.get(key)
    if variant is None or not query:
        return None
    from urllib.parse import parse_qs

    values = parse_qs(query, keep_blank_values=True).get(variant[0])
    if values and values[-1].strip().lower() in TRUE_VALUES:
        return variant[1]
    return None
