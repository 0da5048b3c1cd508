"""Compile loaded records into the site's category files (relative path -> bytes), in memory.

Two steps, both pure: `v2_records` turns the records into the published v2 documents (data: every
later stage reads these dicts, nothing parses them back from bytes), and `compile_outputs` serialises
them with the legacy (v1) files. `compiled_files` is `compile_outputs` remembered in the disk memo by
the digests of the record and settings files, so a build of unchanged data skips the serialising.
Every JSON document is produced once, as `<path>.json`; the extensionless and alias object keys come
from the route table (`builder.routes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from builder.categories import CATEGORIES
from builder.memo import memoized, memoized_files
from builder.records import CategoryData
from builder.routes import (
    HEARTBEAT_FILE,
    RENAMES_FILE,
    REPLICATE_MODE_FILE,
    categories_file,
    info_file,
    legacy_file,
    model_file,
    v1_file,
    v2_file,
)
from builder.site.openapi import openapi_files
from builder.site.search import search_files
from builder.v2 import v2_record

__all__ = ["V2Records", "compile_outputs", "compiled_files", "text_groups", "v2_category", "v2_records"]

#: category -> model key -> published v2 record, in output order
V2Records = dict[str, dict[str, dict[str, Any]]]

V1_INFO = ("Legacy (v1) model reference API: the model lists in the format of the AI-Horde GitHub repositories "
           "(stable_diffusion.json, db.json, ...), served as static files.")
V2_INFO = ("Model reference API v2: one JSON object per category, model key -> record; static, read-only, "
           "built from the authoritative data in git.")
HEARTBEAT = {"status": "ok", "ai_horde": {"degraded": False, "consecutive_failures": 0, "seconds_until_retry": None}}
REPLICATE_MODE = {"replicate_mode": "REPLICA", "canonical_format": "v2", "writable": False}


def text_groups(keys: list[str]) -> dict[str, str]:
    """key -> text_model_group, remembered across builds of the same keys (the rules are ~50 us a name)."""
    def make() -> bytes:
        from builder.legacy.textgroups import base_name

        return orjson.dumps({k: base_name(k) for k in keys})

    groups: dict[str, str] = orjson.loads(memoized("text_groups", ["\n".join(keys).encode()], make))
    return groups


def v2_category(cd: CategoryData) -> dict[str, dict[str, Any]]:
    """The published v2 records of one category, model key -> record."""
    groups = text_groups(list(cd.records)) if "text_model_group" in cd.category.v2_fields and cd.records else {}
    return {key: v2_record(cd.category, rec, groups.get(key)) for key, rec in cd.records.items()}


def v2_records(cats: Mapping[str, CategoryData]) -> V2Records:
    """The published v2 records of every category (in the category table's order)."""
    return {cat.name: v2_category(cats[cat.name]) for cat in CATEGORIES}


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def compile_outputs(cats: Mapping[str, CategoryData], v2: V2Records | None = None) -> dict[str, bytes]:
    """Relative path -> bytes of the category files (v1, v2, per model, legacy) and the fixed API
    objects; `v2` is `v2_records(cats)` when the caller has it already."""
    from builder.legacy.convert import legacy_files  # a build of unchanged data does not get here

    if v2 is None:
        v2 = v2_records(cats)
    out: dict[str, bytes] = {}
    for cat in CATEGORIES:
        cd = cats[cat.name]
        files = legacy_files(cd)
        for name, content in files.items():
            out[legacy_file(name)] = content
        if cat.managed_elsewhere:
            out[v1_file(cat.name)] = b"{}"
        elif cat.has_legacy:
            out[v1_file(cat.name)] = files[cat.legacy_json_file or ""]
        recs = v2[cat.name]
        out[v2_file(cat.name)] = _json(recs)
        for key, rec in recs.items():
            out[model_file(cat.name, key)] = _json(rec)
    # former key -> current key per category (`hmr model rename`), so clients can resolve old names;
    # always published (`{}` when none) so its absence never has to be told from an error
    out[RENAMES_FILE] = _json({c.name: cats[c.name].settings["renames"] for c in CATEGORIES
                               if cats[c.name].settings.get("renames")})
    out[info_file("v1")] = _json({"message": V1_INFO})
    out[info_file("v2")] = _json({"message": V2_INFO})
    out[categories_file("v1")] = _json([c.name for c in CATEGORIES])
    out[categories_file("v2")] = _json([c.name for c in CATEGORIES if not c.managed_elsewhere])
    v2_names = [c.name for c in CATEGORIES if not c.managed_elsewhere]
    out.update(search_files(v2, v2_names))
    out.update(openapi_files([c.name for c in CATEGORIES], v2_names))
    out[HEARTBEAT_FILE] = _json(HEARTBEAT)
    out[REPLICATE_MODE_FILE] = _json(REPLICATE_MODE)
    return out


def compiled_files(cats: Mapping[str, CategoryData], v2: V2Records) -> dict[str, bytes]:
    """`compile_outputs(cats, v2)`, remembered by the digests of the record and settings files (in
    order): the same data compiles to the same bytes, so a build of unchanged data skips ~0.15 s."""
    parts = []
    for name, cd in cats.items():
        if any(not rec.digest for rec in cd.records.values()):
            return compile_outputs(cats, v2)  # records converted in memory (canonical_format legacy): no digests
        parts.append([name, cd.settings_digest, [[k, rec.digest] for k, rec in cd.records.items()]])
    return memoized_files("compiled", [orjson.dumps(parts)], lambda: compile_outputs(cats, v2))
