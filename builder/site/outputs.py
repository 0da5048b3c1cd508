"""Compile loaded records into the site's files (relative path -> bytes), in memory.

Nothing here touches the disk: `builder.site.build` validates, calls `compile_outputs`, then writes
the result atomically. Every JSON document is produced once, as `<path>.json`; the extensionless and
alias object keys come from the route table (`builder.site.routes`).
"""

from __future__ import annotations

from typing import Any

import orjson

from builder.categories import CATEGORIES, V2_SCHEMA_VERSION, Category
from builder.legacy import jsonrec, text
from builder.legacy.jsonfmt import dumps_legacy, dumps_settings
from builder.records import CategoryData, Record

V1 = "api/model_references/v1"
V2 = "api/model_references/v2"

V1_INFO = ("Legacy (v1) model reference API: the model lists in the format of the AI-Horde GitHub repositories "
           "(stable_diffusion.json, db.json, ...), served as static files.")
V2_INFO = ("Model reference API v2: one JSON object per category, model key -> record; static, read-only, "
           "built from the authoritative data in git.")
HEARTBEAT = {"status": "ok", "ai_horde": {"degraded": False, "consecutive_failures": 0, "seconds_until_retry": None}}
REPLICATE_MODE = {"replicate_mode": "REPLICA", "canonical_format": "v2", "writable": False}


def v2_record(cat: Category, rec: Record, group: str | None = None) -> dict[str, Any]:
    """The v2 record as existing clients read it: derived fields filled in, the legacy block left out."""
    data = rec.v2
    out: dict[str, Any] = {"record_type": cat.name, "name": data["name"]}
    for f in ("description", "version", "finetune_series"):
        if data.get(f) is not None:
            out[f] = data[f]
    out["metadata"] = {"schema_version": V2_SCHEMA_VERSION, **(data.get("metadata") or {})}
    out["config"] = data.get("config") or {"download": []}
    out["model_classification"] = {"domain": cat.domain, "purpose": cat.purpose}
    if data.get("size_on_disk_bytes") is not None:
        out["size_on_disk_bytes"] = data["size_on_disk_bytes"]
    for f in cat.v2_fields:
        if f == "parameters":
            value = data.get("parameters", data.get("parameters_count"))
        elif f == "text_model_group" and data.get(f) is None:
            # as the existing library's converter groups the record keys
            if group is None:
                from builder.legacy.textgroups import base_name

                group = base_name(rec.key)
            value = group
        else:
            value = data.get(f)
        if value is not None:
            out[f] = value
    return out


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


def legacy_records(cd: CategoryData) -> dict[str, dict]:
    """The legacy JSON object of an image-repo category, in legacy order."""
    return {key: jsonrec.to_legacy(cd.category, rec.v2, rec.legacy) for key, rec in cd.records.items()}


def text_rows(cd: CategoryData) -> list[dict[str, str]]:
    return [text.v2_to_row(rec.v2, rec.legacy) for rec in cd.records.values()]


def legacy_files(cd: CategoryData) -> dict[str, bytes]:
    """File name -> bytes of what the legacy GitHub repository holds for this category."""
    cat = cd.category
    if not cat.has_legacy:
        return {}
    if cat.legacy_kind == "text":
        rows = text_rows(cd)
        db = text.db_json(rows, cd.text_defaults, cd.settings_whitelist)
        out = {"models.csv": text.write_csv(rows).encode("utf-8"), "db.json": dumps_legacy(db, "indent4")}
        if "defaults" in cd.settings:
            out["defaults.json"] = dumps_settings(cd.settings["defaults"])
        if "generation_params" in cd.settings:
            out["generation_params.json"] = dumps_settings(cd.settings["generation_params"])
        return out
    assert cat.legacy_file is not None
    return {cat.legacy_file: dumps_legacy(legacy_records(cd), cat.legacy_layout)}


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
