"""The key layout of the published site, and the route table over it.

This module is the one owner of where things are published: every other module (outputs, metadata,
catalog, changes, html, diff, publish, the replica client) names a key through the functions and
constants below, never by spelling `api/model_references/...` itself. It imports nothing but the
standard library (and `builder.keys`, which imports nothing else), so the replica client can use it
without the builder.

The route table maps object key -> file in the site tree, content type, cache policy. It is shared by
`hmr build` (nginx config), `hmr serve` and `hmr deploy`, so a key resolves the same way everywhere.
The site tree holds each JSON document once as `<path>.json`; the table adds the extensionless key
(what the old API's clients request) and the v1 aliases of the old routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from builder.errors import DataError
from builder.keys import key_stem

MUTABLE_CACHE = "public, max-age=60, stale-while-revalidate=600, stale-if-error=86400"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"

#: build-private files (the generated nginx config): written into the site tree, never an object key
PRIVATE_PREFIX = "_config/"

#: the old PRIMARY's API root, and its two model-reference trees (files under them end in .json)
API = "api"
V1 = "api/model_references/v1"
V2 = "api/model_references/v2"
_V1 = V1 + "/"

#: the deploy manifest (every key with its sha256), its detached signature
MANIFEST_FILE = f"{V2}/manifest.json"
SIGNATURE_FILE = MANIFEST_FILE + ".sig"
#: search index, change feed (JSON and Atom), renames, the include_group variant of v1 text
INDEX_FILE = f"{V2}/index.json"
CHANGES_FILE = f"{V2}/changes.json"
ATOM_FILE = f"{V2}/changes.atom"
RENAMES_FILE = f"{V2}/renames.json"
INCLUDE_GROUP_FILE = f"{V1}/text_generation.include_group.json"
HEARTBEAT_FILE = f"{API}/heartbeat.json"
#: `api/` (the old landing message), `api/openapi.json`, the HTML page `api/docs` (also `api/docs/`)
WELCOME_FILE = f"{API}/index.json"
OPENAPI_FILE = f"{API}/openapi.json"
API_DOCS_FILE = f"{API}/docs/index.html"
#: keys of the web servers only (`hmr serve`, nginx): key -> the file that answers it. They are not
#: objects (the manifest and a deploy leave them out): `api/` ends in "/", and `api/docs` is also a
#: folder, which a filesystem-backed store cannot hold; on a bucket the welcome is `api/index`
WEB_KEYS = {f"{API}/": WELCOME_FILE, f"{API}/docs": API_DOCS_FILE}
#: the old API's cross-category search, its default page (per category: `search_file`)
SEARCH_FILE = f"{V2}/search.json"
REPLICATE_MODE_FILE = f"{API}/replicate_mode.json"
#: the built legacy files, in the old repositories' layout (what `hmr sync-legacy` pushes)
LEGACY_DIR = "legacy"
#: where a deploy keeps each generation's immutable copy of the data: `snapshots/<generation>/<key>`
SNAPSHOTS = "snapshots/"


def snapshot_key(generation: int, key: str) -> str:
    """The object key of `key`'s immutable copy in generation `generation`'s snapshot."""
    return f"{SNAPSHOTS}{generation}/{key}"


def v1_file(category: str) -> str:
    """The site file of a category's v1 (legacy format) document."""
    return f"{V1}/{category}.json"


def v2_file(category: str) -> str:
    """The site file of a category's v2 document."""
    return f"{V2}/{category}.json"


def v1_key(category: str) -> str:
    """The object key the old API serves a category's v1 document at (no extension)."""
    return f"{V1}/{category}"


def v2_key(category: str) -> str:
    """The object key the old API serves a category's v2 document at (no extension)."""
    return f"{V2}/{category}"


def search_file(category: str) -> str:
    """The site file of a category's `v2/{category}/search` default page."""
    return f"{V2}/{category}/search.json"


def model_file(category: str, key: str) -> str:
    """The site file of one v2 record. `key` is the model key as published: a safe key is its own path
    (it may hold "/"), any other gets its encoded name (`builder.keys.key_stem`), so none escapes."""
    return f"{V2}/{category}/model/{key_stem(key)}.json"


def model_key(category: str, key: str) -> str:
    """The object key of one v2 record (no extension)."""
    return f"{V2}/{category}/model/{key_stem(key)}"


def info_file(version: str) -> str:
    """`{version}/info`: the old API's one-line description of a tree (`version` is "v1" or "v2")."""
    return f"{API}/model_references/{version}/info.json"


def categories_file(version: str) -> str:
    """`{version}/model_categories`: the category names a tree lists."""
    return f"{API}/model_references/{version}/model_categories.json"


#: the old API's `model_references/statistics/{category}` (the grouped text variant: `<cat>.grouped`)
STATISTICS = f"{API}/model_references/statistics"


def statistics_file(category: str, grouped: bool = False) -> str:
    """The site file of a category's statistics; `grouped`: the `group_text_models=true` variant."""
    return f"{STATISTICS}/{category}{'.grouped' if grouped else ''}.json"


def text_api_file(name: str) -> str:
    """The site file of a text utility document of the old API (`name` e.g. "groups/summary")."""
    return f"{V2}/text_generation/{name}.json"


def metadata_prefix(version: str) -> str:
    """The folder of a tree's `metadata/...` endpoints."""
    return f"{API}/model_references/{version}/metadata"


#: the legacy repositories' files as the build publishes them (models.csv, db.json, stable_diffusion.json, ...)
LEGACY = "legacy"
#: the published JSON Schemas of the data files and the documents (`$schema` hint targets)
SCHEMAS = "schemas"


def legacy_file(name: str) -> str:
    """The site file of a legacy repository file (`name` as in its repository, e.g. "models.csv")."""
    return f"{LEGACY}/{name}"


def schema_file(name: str) -> str:
    """The site file of a published JSON Schema (`name` with its extension)."""
    return f"{SCHEMAS}/{name}"


#: the HTML browse pages: the home page, one table per category, one page per model, and their assets
HOME_PAGE = "index.html"
ASSETS = "assets"
#: the pages' sitemap (written when the site's URL is known: a sitemap lists absolute URLs)
SITEMAP_FILE = "sitemap.xml"


def category_page(category: str) -> str:
    """The page of a category's table."""
    return f"models/{category}/index.html"


def model_page(category: str, key: str) -> str:
    """The page of one model; a key holding "/" is nested, a key unsafe as a path gets its encoded name
    (`builder.keys.key_stem`), and the key `index` (which would be the table's page) becomes
    `index.model.html`."""
    return f"models/{category}/{'index.model' if key == 'index' else key_stem(key)}.html"

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
    f"{STATISTICS}/text_generation": ("group_text_models", f"{STATISTICS}/text_generation.grouped.json"),
}
TRUE_VALUES = ("1", "true", "t", "yes", "y", "on")
#: Query lookups of the old API: key -> (parameter, folder): `key?param=V` is answered by the object
#: `<folder>V` (V as the query decodes it, "/" nesting), e.g. `v2/text_generation/parse_name?name=N`
#: by `v2/text_generation/parse_name/N`, which is also a plain static key.
#: `group?name=G` (the old API's group detail) is the object `group/by-name/G`, beside the old API's
#: `group/name_schema` and `group/common_fields` paths rather than among them
GROUP_BY_NAME = f"{V2}/text_generation/group/by-name/"
QUERY_LOOKUPS = {
    f"{V2}/text_generation/parse_name": ("name", f"{V2}/text_generation/parse_name/"),
    f"{V2}/text_generation/group": ("name", GROUP_BY_NAME),
}

#: CORS, as GitHub raw sends it: every response may be read by any origin, and its ETag too (a browser
#: client revalidates with If-None-Match). Sent by `hmr serve`, the nginx config and the bucket rules.
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "ETag"}
#: content types (prefixes) worth sending gzip-compressed to a client that accepts it (serve and nginx)
COMPRESSIBLE = ("application/json", "text/", "application/javascript", "application/xml", "image/svg+xml",
                "application/atom+xml", "application/schema+json")
#: the answer to an OPTIONS preflight (any key): reads only, the conditional-request headers allowed
CORS_METHODS = "GET, HEAD, OPTIONS"
CORS_ALLOW_HEADERS = "If-None-Match, If-Modified-Since, Range, Accept, Accept-Encoding"
CORS_MAX_AGE = "86400"
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": CORS_METHODS,
    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
    "Access-Control-Max-Age": CORS_MAX_AGE,
}

_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".atom": "application/atom+xml",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",
    ".txt": "text/plain; charset=utf-8",
    ".sig": "application/octet-stream",
    ".conf": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Route:
    """One object key of the site: the tree file that holds its bytes, how it is typed and cached."""

    key: str
    file: str
    content_type: str
    cache_control: str


def content_type(file: str) -> str:
    """The Content-Type of a site file, by its extension (JSON when it has none)."""
    dot = file.rfind(".")
    return _TYPES.get(file[dot:], "application/octet-stream") if dot > file.rfind("/") else "application/json"


def cache_control(key: str) -> str:
    """The Cache-Control of a key: snapshots never change, everything else is revalidated."""
    return IMMUTABLE_CACHE if key.startswith("snapshots/") else MUTABLE_CACHE


def routes(files: Iterable[str], web: bool = False) -> list[Route]:
    """Every object key of a site whose tree holds `files` (relative paths), in a stable order; `web`:
    with the web servers' own keys (WEB_KEYS)."""
    out: dict[str, Route] = {}

    def add(key: str, file: str) -> None:
        held = out.get(key)
        if held is not None and held.file != file and key in (held.file, file):
            # `x.json` served as itself and as the extensionless key of `x.json.json`: one would hide the other
            raise DataError(f"object key {key!r} would serve both {held.file!r} and {file!r}", file)
        out.setdefault(key, Route(key, file, content_type(file), cache_control(key)))

    for f in sorted(files):
        if f.startswith(PRIVATE_PREFIX):
            continue
        add(f, f)
        if f.startswith(("api/", "snapshots/")) and f.endswith(".json"):
            add(f[: -len(".json")], f)
        for alias in V1_ALIASES.get(f, ()):
            add(alias, f)
    present = set(out) if web else set()
    for key, file in WEB_KEYS.items():
        if file in present:
            add(key, file)
    return list(out.values())


def route_map(files: Iterable[str], web: bool = False) -> dict[str, Route]:
    """`routes(files, web)` by key."""
    return {r.key: r for r in routes(files, web)}


def query_variant(key: str, query: str) -> str | None:
    """The file key that answers `key?query` when the query selects a variant (see QUERY_VARIANTS and
    QUERY_LOOKUPS)."""
    lookup = QUERY_LOOKUPS.get(key)
    variant = QUERY_VARIANTS.get(key)
    if (variant is None and lookup is None) or not query:
        return None
    from urllib.parse import parse_qs

    if lookup is not None:
        names = parse_qs(query).get(lookup[0])
        return f"{lookup[1]}{names[-1]}.json" if names else None
    assert variant is not None
    values = parse_qs(query, keep_blank_values=True).get(variant[0])
    if values and values[-1].strip().lower() in TRUE_VALUES:
        return variant[1]
    return None
