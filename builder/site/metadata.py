"""The old API's `metadata/...` endpoints as static objects, under v1 and v2.

- `metadata/last_updated` -> `{"last_updated": int}`, the newest category time;
- `metadata/metadata` -> `{category: CategoryMetadata}`;
- `metadata/{category}` -> `CategoryMetadata`;
- `metadata/{category}/last_updated` -> `{"category": ..., "last_updated": int}`.

A static site has no operation log, so `CategoryMetadata` (the existing library's model, whose time
fields are required integers) is derived: `total_models` counts the category's records, the counters
are 0, `backend_type` is "StaticSite", and the times come from the source, so the same input always
gives the same bytes:
- in git: `last_updated` is the time of the newest commit that touched `data/<category>`,
  `initialization_time` of the oldest (one `git log` walk for all categories; uncommitted edits do not
  count until they are committed);
- outside git: SOURCE_DATE_EPOCH when set, else the newest (and oldest) mtime in the category folder;
- a category with no data and no history gets the data set's earliest time (it "exists" since the
  data set does), or 0 for an empty data set, rather than moving whenever another category changes.

The times are source facts (`builder.site.source`), read once per build; this module only shapes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from builder.categories import CATEGORIES
from builder.records import CategoryData
from builder.routes import metadata_prefix
from builder.site.source import CategoryTimes

__all__ = ["BACKEND_TYPE", "METADATA_SCHEMA_VERSION", "category_metadata", "metadata_files"]

BACKEND_TYPE = "StaticSite"
METADATA_SCHEMA_VERSION = "1.0.0"


def category_metadata(name: str, times: CategoryTimes, total_models: int) -> dict[str, Any]:
    """`CategoryMetadata` in the existing library's field order."""
    return {
        "category": name,
        "last_updated": times.last_updated,
        "last_operation_type": None,
        "last_operation_model": None,
        "total_creates": 0,
        "total_updates": 0,
        "total_deletes": 0,
        "total_models": total_models,
        "initialization_time": times.initialization_time,
        "last_successful_operation": times.last_updated,
        "error_count": 0,
        "metadata_schema_version": METADATA_SCHEMA_VERSION,
        "backend_type": BACKEND_TYPE,
    }


def metadata_files(cats: Mapping[str, CategoryData], times: Mapping[str, CategoryTimes]) -> dict[str, bytes]:
    """Relative path -> bytes of the metadata objects of v1 and v2 (the same values under both)."""
    docs = {c.name: category_metadata(c.name, times[c.name], len(cats[c.name].records)) for c in CATEGORIES}
    newest = max((d["last_updated"] for d in docs.values()), default=None)
    out: dict[str, bytes] = {}
    for version in ("v1", "v2"):
        prefix = metadata_prefix(version)
        out[f"{prefix}/last_updated.json"] = orjson.dumps({"last_updated": newest})
        out[f"{prefix}/metadata.json"] = orjson.dumps(docs)
        for name, doc in docs.items():
            out[f"{prefix}/{name}.json"] = orjson.dumps(doc)
            out[f"{prefix}/{name}/last_updated.json"] = orjson.dumps(
                {"category": name, "last_updated": doc["last_updated"]})
    return out
