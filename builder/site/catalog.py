"""Site objects derived from the compiled records: the search index, the `include_group` variant of the
v1 text file, and the published JSON Schemas.

- `INDEX_FILE` (`v2/index.json`): one compact row per model across all categories, for search
  and filters on the client (the static stand-in for the old API's `/search`). A row holds the
  category, key, name and, when the record has them, baseline, nsfw, tags, inpainting, style,
  size_on_disk_bytes, parameters (text) and url (a text model's url, an image model's homepage).
- `INCLUDE_GROUP_FILE` (`v1/text_generation.include_group.json`): what the old API answers to
  `v1/text_generation?include_group=true` (db.json plus `text_model_group` and its summary, re-dumped
  with `json.dumps` defaults as the old API does). The route table maps the query onto it.
- `schemas/<name>.json`: the package's JSON Schemas (package data, `SCHEMAS_DIR`), the `$schema` hint
  targets; the repository's `schemas/` folder is a mirror of them for editors (`python -m builder.schemas`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import orjson

from builder.memo import memoized
from builder.routes import INCLUDE_GROUP_FILE, INDEX_FILE, schema_file

__all__ = ["INCLUDE_GROUP_FILE", "INDEX_FILE", "INDEX_SCHEMA_VERSION", "SCHEMAS_DIR", "catalog_files", "include_group_json",
           "index_json", "index_row", "schema_files", "schema_paths"]

INDEX_SCHEMA_VERSION = 1
#: package data, so an installed package builds without a source checkout
SCHEMAS_DIR: Traversable = files("builder.site") / "schemas"

_ROW_FIELDS = ("baseline", "nsfw", "tags", "inpainting", "style", "size_on_disk_bytes", "parameters")


def index_row(category: str, key: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    """One model's row of the search index."""
    row: dict[str, Any] = {"category": category, "key": key, "name": rec.get("name", key)}
    for f in _ROW_FIELDS:
        v = rec.get(f)
        if v is not None and v != "" and v != []:
            row[f] = v
    row.setdefault("nsfw", False)
    url = rec.get("url") or rec.get("homepage")
    if url:
        row["url"] = url
    return row


def index_json(v2: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> bytes:
    """`index.json` of the v2 records (category -> key -> record, in output order)."""
    rows = [index_row(cat, key, rec) for cat, recs in v2.items() for key, rec in recs.items()]
    return orjson.dumps({"schema_version": INDEX_SCHEMA_VERSION, "count": len(rows), "models": rows})


def include_group_json(db_json: bytes) -> bytes:
    """The `include_group=true` answer for a db.json: parsed, grouped, `json.dumps` with its defaults."""
    from builder.legacy.textgroups import include_group

    return json.dumps(include_group(json.loads(db_json))).encode("utf-8")


def schema_paths(root: Traversable = SCHEMAS_DIR) -> list[Traversable]:
    """Every `*.json` schema under `root`, by name."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.endswith(".json") and p.is_file()), key=lambda p: p.name)


def schema_files(root: Traversable = SCHEMAS_DIR) -> dict[str, bytes]:
    """`schemas/<name>.json` -> bytes, for every schema the package holds."""
    return {schema_file(p.name): p.read_bytes() for p in schema_paths(root)}


def catalog_files(v2: Mapping[str, Mapping[str, Mapping[str, Any]]], v1_text: bytes | None) -> dict[str, bytes]:
    """index.json, the include_group variant (when the site has a v1 text file: `v1_text`, its bytes)
    and the schemas."""
    out = {INDEX_FILE: index_json(v2)}
    if v1_text is not None:
        # grouping and the json.dumps re-serialisation cost ~0.1 s: remembered across builds of the same db.json
        out[INCLUDE_GROUP_FILE] = memoized("include_group", [v1_text], lambda: include_group_json(v1_text))
    out.update(schema_files())
    return out
