"""Compile loaded records into the site's files (relative path -> bytes), in memory.

Nothing here touches the disk: `builder.site.build` validates, calls `compile_outputs`, then writes
the result atomically. Every JSON document is produced once, as `<path>.json`; the extensionless and
alias object keys come from the route table (`builder.routes`).
"""

from __future__ import annotations

from typing import Any

import orjson

from builder.categories import CATEGORIES
from builder.legacy.convert import legacy_files
from builder.records import CategoryData
from builder.v2 import v2_record

V1 = "api/model_references/v1"
V2 = "api/model_references/v2"

V1_INFO = ("Legacy (v1) model reference API: the model lists in the format of the AI-Horde GitHub repositories "
           "(stable_diffusion.json, db.json, ...), served as static files.")
V2_INFO = ("Model reference API v2: one JSON object per category, model key -> record; static, read-only, "
           "built from the authoritative data in git.")
HEARTBEAT = {"status": "ok", "ai_horde": {"degraded": False, "consecutive_failures": 0, "seconds_until_retry": None}}
REPLICATE_MODE = {"replicate_mode": "REPLICA", "canonical_format": "v2", "writable": False}


def text_groups(keys: list[str]) -> dict[str, str]:
    """key -> text_model_group, remembered across builds of the same keys (the rules are ~50 us a name)."""
    from builder.site.memo import memoized

    def make() -> bytes:
        from builder.legacy.textgroups import base_name

        return orjson.dumps({k: base_name(k) for k in keys})

    raw = memoized("text_groups", ["\n".join(keys).encode()],
                   make, ("builder.legacy.textgroups",))
    return orjson.loads(raw)


def v2_category(cd: CategoryData) -> dict[str, dict]:
    groups = text_groups(list(cd.records)) if "text_model_group" in cd.category.v2_fields and cd.records else {}
    return {key: v2_record(cd.category, rec, groups.get(key)) for key, rec in cd.records.items()}


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def compile_outputs(cats: dict[str, CategoryData]) -> dict[str, bytes]:
    """Relative path -> bytes of every file of the site."""
    out: dict[str, bytes] = {}
    for cat in CATEGORIES:
        cd = cats[cat.name]
        files = legacy_files(cd)
        for name, content in files.items():
            out[f"legacy/{name}"] = content
        if cat.managed_elsewhere:
            out[f"{V1}/{cat.name}.json"] = b"{}"
        elif cat.has_legacy:
            out[f"{V1}/{cat.name}.json"] = files[cat.legacy_json_file or ""]
        v2 = v2_category(cd)
        out[f"{V2}/{cat.name}.json"] = _json(v2)
        for key, rec in v2.items():
            out[f"{V2}/{cat.name}/model/{key}.json"] = _json(rec)
    # former key -> current key per category (`hmr model rename`), so clients can resolve old names;
    # always published (`{}` when none) so its absence never has to be told from an error
    out[f"{V2}/renames.json"] = _json({c.name: cats[c.name].settings["renames"] for c in CATEGORIES
                                       if cats[c.name].settings.get("renames")})
    out[f"{V1}/info.json"] = _json({"message": V1_INFO})
    out[f"{V2}/info.json"] = _json({"message": V2_INFO})
    out[f"{V1}/model_categories.json"] = _json([c.name for c in CATEGORIES])
    out[f"{V2}/model_categories.json"] = _json([c.name for c in CATEGORIES if not c.managed_elsewhere])
    out["api/heartbeat.json"] = _json(HEARTBEAT)
    out["api/replicate_mode.json"] = _json(REPLICATE_MODE)
    return out
