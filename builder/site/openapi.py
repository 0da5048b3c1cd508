"""`api/openapi.json` (OpenAPI 3.1) and `api/docs/index.html`: the read API the site serves, described.

Every path is relative to the `…/api` base (the old API's root). A category's documents and records
point at the published JSON Schemas (`schemas/<category>.schema.json`, by relative `$ref`, so a
validator or a code generator resolves them from the same site); the other documents are described
inline. The old query parameters the site honours are declared (`include_group`, `group_text_models`,
`name`); the search paths serve the default page only (docs/search.md). `paths()` is the list the HTML page
and the tests read. Each JSON path also answers with `.json` appended.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.routes import API, STATISTICS, V1, V2

# the trees relative to the `…/api` base the paths are written against
_V1P, _V2P, _STATS = (k[len(API):] for k in (V1, V2, STATISTICS))

__all__ = ["WELCOME", "Path", "api_docs_html", "openapi_document", "openapi_files", "paths"]

#: the old API's landing message, unchanged (the HTML page is at `/api/docs`)
WELCOME = {"message": "Welcome to the Horde Model Reference API. See `/api/docs` for interactive documentation."}
_OBJ: dict[str, Any] = {"type": "object"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_SEARCH = {"type": "object", "required": ["results", "total", "offset", "limit", "has_more"], "properties": {
    "results": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"},
    "offset": {"type": "integer"}, "limit": {"type": "integer"}, "has_more": {"type": "boolean"}}}
_MESSAGE = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}


def _schema_ref(name: str) -> dict[str, Any]:
    # openapi.json is at api/openapi.json, the schemas at schemas/
    return {"$ref": f"../schemas/{name}.schema.json"}


@dataclass(frozen=True)
class Path:
    """One read path: its template (`{name}` may hold "/"), what it answers, its schema, its parameters."""

    template: str
    summary: str
    schema: dict[str, Any]
    tag: str
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    params: dict[str, Sequence[str] | None] = field(default_factory=dict)  # path parameter -> enum (None: free)
    content_type: str = "application/json"


def paths(categories: Sequence[str], v2_categories: Sequence[str]) -> list[Path]:
    """Every read path of the site, for `categories` (v1, all) and `v2_categories` (v2's list)."""
    out = [
        Path("/", "The API's landing message", _MESSAGE, "default"),
        Path("/heartbeat", "A constant health answer (a static site probes nothing)", _OBJ, "default"),
        Path("/replicate_mode", "The backend's mode: a read-only REPLICA in v2 format", _OBJ, "default"),
        Path("/openapi.json", "This document", _OBJ, "default"),
        Path("/docs", "The API's HTML documentation page", {"type": "string"}, "default", content_type="text/html"),
    ]
    for v in ("v1", "v2"):
        base = {"v1": _V1P, "v2": _V2P}[v]
        out += [
            Path(f"{base}/info", f"One-line description of the {v} tree", _MESSAGE, v),
            Path(f"{base}/model_categories", f"The categories of the {v} tree", _STR_LIST, v),
            Path(f"{base}/metadata/last_updated", "The newest change time over every category", _OBJ, v),
            Path(f"{base}/metadata/metadata", "Every category's metadata", _OBJ, v),
            Path(f"{base}/metadata/{{category}}", "One category's metadata", _OBJ, v, params={"category": categories}),
            Path(f"{base}/metadata/{{category}}/last_updated", "One category's last change time", _OBJ, v,
                 params={"category": categories}),
        ]
    out.append(Path(_V1P + "/{category}", "A category in the legacy (v1) format, as the GitHub "
                    "repositories hold it", _OBJ, "v1", params={"category": categories}))
    out.append(Path(_V1P + "/text_generation", "The legacy text list (db.json); with "
                    "include_group=true each entry carries its group and the group's summary", _OBJ, "v1",
                    query=(("include_group", "boolean", "add text_model_group and text_model_group_summary"),)))
    out += [Path(_V1P + "/stable_diffusion", "The legacy image list (stable_diffusion.json), "
                 "as v1/image_generation", _OBJ, "v1"),
            Path(_V1P + "/db.json", "The legacy text list, as v1/text_generation", _OBJ, "v1")]
    for c in categories:
        record = _schema_ref(c)
        out.append(Path(f"{_V2P}/{c}", f"Every {c} record, model key -> record",
                        {"type": "object", "additionalProperties": record}, "v2"))
        out.append(Path(f"{_V2P}/{c}/model/{{name}}", f"One {c} record (a key with \"/\" nests)",
                        record, "v2", params={"name": None}))
    for c in v2_categories:
        out.append(Path(f"{_V2P}/{c}/search", f"Search {c}: the default page (first 50 records)",
                        _SEARCH, "search"))
    out.append(Path(_V2P + "/search", "Search every category: the default page", _SEARCH, "search"))
    t = f"{_V2P}/text_generation"
    out += [
        Path(f"{t}/groups", "The text model groups", {"type": "object", "properties": {"groups": _STR_LIST}},
             "text_utils"),
        Path(f"{t}/groups/summary", "Every group with its counts, sizes, aliases and issues", _OBJ, "text_utils"),
        Path(f"{t}/groups/health", "The groups' health issues with counts by type", _OBJ, "text_utils"),
        Path(f"{t}/distinct_baselines", "The distinct text baselines",
             {"type": "object", "properties": {"baselines": _STR_LIST}}, "text_utils"),
        Path(f"{t}/aliases", "The group aliases", _OBJ, "text_utils"),
        Path(f"{t}/aliases/{{name}}", "One canonical group's aliases", _OBJ, "text_utils", params={"name": None}),
        Path(f"{t}/families", "The stored families (none on a static site)", _OBJ, "text_utils"),
        Path(f"{t}/families/detect", "Suggested families (default parameters)", _OBJ, "text_utils"),
        Path(f"{t}/group", "One group's members, shared fields, sizes and name format", _OBJ, "text_utils",
             query=(("name", "string", "the group name (may hold \"/\")"),)),
        Path(f"{t}/group/by-name/{{name}}", "One group, as a plain key", _OBJ, "text_utils", params={"name": None}),
        Path(f"{t}/parse_name", "A published name's parts and group", _OBJ, "text_utils",
             query=(("name", "string", "a published model name"),)),
        Path(f"{t}/parse_name/{{name}}", "A published name's parts, as a plain key", _OBJ, "text_utils",
             params={"name": None}),
        Path(_STATS + "/{category}", "A category's statistics", _OBJ, "statistics",
             params={"category": categories}),
        Path(_STATS + "/text_generation", "Text statistics; group_text_models=true merges "
             "the text models by group", _OBJ, "statistics",
             query=(("group_text_models", "boolean", "merge text models by group"),)),
        Path(_V2P + "/manifest", "Every published key with its sha256, the generation",
             _schema_ref("manifest"), "site"),
        Path(_V2P + "/index", "One row per model across every category", _schema_ref("index"),
             "site"),
        Path(_V2P + "/changes", "The change feed", _schema_ref("changes"), "site"),
        Path(_V2P + "/changes.atom", "The change feed (Atom)", {"type": "string"}, "site",
             content_type="application/atom+xml"),
        Path(_V2P + "/renames", "Former model keys -> current, per category", _OBJ, "site"),
    ]
    return out


def _operation(p: Path) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for name, enum in p.params.items():
        schema: dict[str, Any] = {"type": "string"}
        if enum is not None:
            schema["enum"] = list(enum)
        params.append({"name": name, "in": "path", "required": True, "schema": schema,
                       **({"description": "may hold \"/\" (percent-encode it, or send it as is)"}
                          if enum is None else {})})
    for name, typ, desc in p.query:
        params.append({"name": name, "in": "query", "required": typ == "string", "description": desc,
                       "schema": {"type": typ}})
    op_id = "get" + "".join(c if c.isalnum() else "_" for c in p.template).rstrip("_")
    op: dict[str, Any] = {"summary": p.summary, "operationId": op_id, "tags": [p.tag],
                          "responses": {"200": {"description": "OK", "content": {p.content_type: {"schema": p.schema}}},
                                        "404": {"description": "No such object",
                                                "content": {"application/json": {"schema": _OBJ}}}}}
    if params:
        op["parameters"] = params
    return {"get": op}


def openapi_document(categories: Sequence[str], v2_categories: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the read API (module docstring)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI-Horde model reference (static)", "version": "2",
                 "summary": "The model reference's read API, served as static files.",
                 "description": "Read-only: every answer is a published object (GET and HEAD, CORS for any "
                                "origin, ETag revalidation). Search answers its default page; filter with the "
                                "client's query() or see the documentation's search recipe."},
        "servers": [{"url": "/api"}],
        "paths": {p.template: _operation(p) for p in paths(categories, v2_categories)},
    }


def api_docs_html(categories: Sequence[str], v2_categories: Sequence[str]) -> str:
    """A self-contained HTML page listing every read path (no script, no external asset)."""
    rows = []
    for p in paths(categories, v2_categories):
        query = "".join(f"<br><code>?{html.escape(n)}=</code> {html.escape(d)}" for n, _, d in p.query)
        params = "".join(f"<br><code>{{{html.escape(n)}}}</code>: {html.escape(', '.join(e) if e else 'any')}"
                         for n, e in p.params.items())
        ref = p.schema.get("$ref") or (p.schema.get("additionalProperties") or {}).get("$ref")
        schema = f'<a href="{html.escape(ref)}">{html.escape(ref.rsplit("/", 1)[-1])}</a>' if ref else ""
        rows.append(f"<tr><td><code>/api{html.escape(p.template)}</code>{params}{query}</td>"
                    f"<td>{html.escape(p.summary)}</td><td>{schema}</td></tr>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Model reference API</title>"
            "<style>body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;"
            "vertical-align:top}</style></head><body>\n<h1>Model reference API</h1>\n"
            "<p>Every path below is a static, read-only object under this site's <code>/api</code> base: "
            "GET and HEAD, <code>Access-Control-Allow-Origin: *</code>, ETag revalidation. The machine-readable "
            "description is <a href=\"../openapi.json\">openapi.json</a> (OpenAPI 3.1); record schemas are "
            "under <a href=\"../../schemas/\">schemas/</a>. Search paths answer their default page only.</p>\n"
            "<table><thead><tr><th>Path</th><th>Answer</th><th>Schema</th></tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>\n</body></html>\n")


def openapi_files(categories: Sequence[str], v2_categories: Sequence[str]) -> dict[str, bytes]:
    """`api/index.json` (the welcome), `api/openapi.json` and `api/docs/index.html`."""
    from builder.routes import API_DOCS_FILE, OPENAPI_FILE, WELCOME_FILE

    doc = openapi_document(categories, v2_categories)
    return {
        WELCOME_FILE: json.dumps(WELCOME, ensure_ascii=False, separators=(",", ":")).encode(),
        OPENAPI_FILE: json.dumps(doc, ensure_ascii=False, indent=1).encode(),
        API_DOCS_FILE: api_docs_html(categories, v2_categories).encode(),
    }
