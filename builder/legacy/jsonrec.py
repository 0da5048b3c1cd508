"""Image-repo legacy JSON records <-> v2 records, losslessly.

A data record holds the v2 fields plus an optional `legacy:` block with what only the legacy format
carries. `to_legacy` derives the legacy record from the v2 fields and applies the block; `from_legacy`
converts a legacy record the way the upstream converter does, then computes the smallest block that
makes `to_legacy` give back exactly the original record (values, absences and key order).

The block holds, besides legacy-only fields (`type`, `download_all`, `available`, ...):
- a field derived from v2 (e.g. `baseline`) when the legacy spelling differs; it is used only while it
  still means the current v2 value, so editing the v2 field wins over a stale spelling;
- `omit`: derived fields the legacy record did not have (e.g. `inpainting` in old files);
- `field_order`: the record's key order when it departs from the canonical one;
- `unlisted`: downloads that match no `config.files` entry (upstream published such records, e.g. a
  clip download named `main`): v2 lists them as downloads, the legacy `files` does not;
- `config_extra` / `config_order`: keys of `config` other than files and download (e.g. a 2023
  record's `config.showcases`) and the key order of `config` when it departs from the usual one;
- `files` / `download`: the legacy `config` entries when they hold more than v2 (md5 sums, yaml config
  files, key order). v2 values win over them; an entry for a file v2 no longer lists is dropped, and a
  file whose sha256 changed loses its stale md5sum.
"""

from __future__ import annotations

import copy
from typing import Any

from builder.categories import BASELINE_ALIASES, KNOWN_BASELINES, MODEL_STYLES, Category
from builder.errors import LegacyFormatError
from builder.records import json_pointer

HINT_KEYS = ("omit", "field_order", "files", "download", "unlisted", "config_extra", "config_order")
_CONFIG_KEYS = ("files", "download", "embedded_component_hashes")

IMAGE_ORDER = (
    "name", "baseline", "optimization", "type", "inpainting", "description", "tags", "showcases",
    "min_bridge_version", "version", "style", "trigger", "homepage", "nsfw", "download_all", "requirements",
    "config", "available", "features_not_supported", "size_on_disk_bytes",
)
GENERIC_ORDER = (
    "name", "type", "pretrained_name", "baseline", "description", "version", "style", "nsfw", "download_all",
    "config", "available", "features_not_supported",
)
#: v2 fields every category shares, in declaration order; category fields follow (`Category.v2_fields`)
V2_COMMON_ORDER = (
    "record_type", "name", "description", "version", "finetune_series", "metadata", "config",
    "model_classification", "size_on_disk_bytes",
)

_IMAGE_OPTIONAL = ("optimization", "description", "tags", "showcases", "min_bridge_version", "version", "style",
                   "trigger", "homepage", "requirements", "size_on_disk_bytes")
_FILE_V2_KEYS = ("sha256sum", "file_type", "content_hash")
#: what a legacy record without the field means, for fields v2 always has a value for
_ABSENCE_MEANS = {"inpainting": False, "nsfw": False}

LEGACY_BASELINE = {
    "stable_diffusion_1": "stable diffusion 1",
    "stable_diffusion_2_768": "stable diffusion 2",
    "stable_diffusion_2_512": "stable diffusion 2 512",
}
_V2_BASELINE = {v: k for k, v in LEGACY_BASELINE.items()}
# Spellings of old files outside today's vocabulary, with the v2 baseline they stand for.
_V2_BASELINE["stable diffusion inpainting"] = "stable_diffusion_1"


def v2_baseline(legacy: str) -> str:
    """The v2 baseline a legacy spelling stands for; unknown spellings become `infer`."""
    value = _V2_BASELINE.get(legacy, legacy)
    if value in KNOWN_BASELINES or value in BASELINE_ALIASES:
        return value
    return "infer"


def legacy_baseline(v2: str) -> str:
    """The legacy spelling of a v2 baseline (most are spelled the same)."""
    return LEGACY_BASELINE.get(v2, v2)


def _v2_style(legacy: Any) -> Any:
    return legacy if isinstance(legacy, str) and legacy.strip() in MODEL_STYLES else None


# --- v2 -> legacy ---------------------------------------------------------------------------------------


def _derived_fields(cat: Category, v2: dict) -> dict[str, Any]:
    """Legacy fields computed from v2 alone (no block)."""
    out: dict[str, Any] = {"name": v2["name"]}
    if cat.legacy_kind == "image":
        out["baseline"] = legacy_baseline(v2["baseline"])
        out["inpainting"] = bool(v2.get("inpainting") or False)
        out["nsfw"] = bool(v2.get("nsfw"))
        for f in _IMAGE_OPTIONAL:
            if v2.get(f) is not None:
                out[f] = v2[f]
    else:
        for f in ("description", "version", "pretrained_name"):
            if v2.get(f) is not None:
                out[f] = v2[f]
        if cat.name == "controlnet" and v2.get("controlnet_style") is not None:
            out["type"] = v2["controlnet_style"]
            out["style"] = v2["controlnet_style"]
    return out


def _override_holds(cat: Category, field: str, legacy_value: Any, v2: dict) -> bool:
    """Whether a legacy spelling kept in the block still stands for the current v2 value."""
    if cat.legacy_kind == "image":
        if field == "baseline":
            return isinstance(legacy_value, str) and v2_baseline(legacy_value) == v2.get("baseline")
        if field == "style":
            return _v2_style(legacy_value) == v2.get("style")
        if field in ("nsfw", "inpainting"):
            return bool(legacy_value) == bool(v2.get(field))
        return v2.get(field) == legacy_value
    if cat.name == "controlnet" and field == "type":
        return legacy_value == v2.get("controlnet_style")
    if cat.name == "controlnet" and field == "style":
        return True  # a style that differed from the type is its own value
    return v2.get(field) == legacy_value


def _derivable(cat: Category) -> set[str]:
    if cat.legacy_kind == "image":
        return {"name", "baseline", "inpainting", "nsfw", "config", *_IMAGE_OPTIONAL}
    base = {"name", "description", "version", "pretrained_name", "config"}
    if cat.name == "controlnet":
        base |= {"type", "style"}
    return base


def _new_record_defaults(cat: Category) -> dict[str, Any]:
    # What the legacy validator requires of a stable_diffusion.json record that v2 cannot say.
    if cat.legacy_kind == "image":
        return {"type": "ckpt", "download_all": False}
    return {}


def legacy_config(v2_config: dict | None, block: dict) -> dict:
    """The legacy `config` ({files, download}) from the v2 downloads and the block's entries."""
    downloads = list((v2_config or {}).get("download") or [])
    by_name = {d["file_name"]: d for d in downloads}
    files: list[dict] = []
    # an unlisted download has no files entry of its own
    covered: set[str] = set(block.get("unlisted") or ())
    for hint in block.get("files") or []:
        path = hint.get("path") or ""
        d = by_name.get(path)
        if d is None:
            if not path or "yaml" in path.lower():
                files.append(dict(hint))  # config files v2 does not carry (sd yaml)
            continue  # a file v2 no longer lists
        covered.add(path)
        sha = d.get("sha256sum")
        sha = None if sha in (None, "", "FIXME") else sha
        stale = hint.get("sha256sum") not in (None, sha)
        entry: dict[str, Any] = {}
        for k, v in hint.items():
            if k in _FILE_V2_KEYS:
                continue
            if stale and k == "md5sum":
                continue
            entry[k] = v
        v2_values = {"sha256sum": sha, "file_type": d.get("file_purpose"), "content_hash": d.get("content_hash")}
        # v2-owned keys keep their position from the hint, new ones follow
        ordered: dict[str, Any] = {}
        for k in hint:
            if k in _FILE_V2_KEYS:
                if v2_values[k] is not None:
                    ordered[k] = v2_values[k]
            elif k in entry:
                ordered[k] = entry[k]
        for k in _FILE_V2_KEYS:
            if k not in ordered and v2_values[k] is not None:
                ordered[k] = v2_values[k]
        files.append(ordered)
    for d in downloads:
        if d["file_name"] in covered:
            continue
        entry = {"path": d["file_name"]}
        sha = d.get("sha256sum")
        if sha not in (None, "", "FIXME"):
            entry["sha256sum"] = sha
        if d.get("file_purpose") is not None:
            entry["file_type"] = d["file_purpose"]
        if d.get("content_hash") is not None:
            entry["content_hash"] = d["content_hash"]
        files.append(entry)

    download: list[dict] = []
    if block.get("download") is not None:
        seen: set[str] = set()
        for hint in block["download"]:
            d = by_name.get(hint.get("file_name"))
            if d is None:
                continue
            seen.add(d["file_name"])
            download.append({k: (d.get("file_url") or "" if k == "file_url" else v) for k, v in hint.items()})
        for d in downloads:
            if d["file_name"] not in seen and d.get("file_url"):
                download.append({"file_name": d["file_name"], "file_path": "", "file_url": d["file_url"]})
    else:
        for f in files:
            d = by_name.get(f.get("path"))
            if d is not None and d.get("file_url"):
                download.append({"file_name": d["file_name"], "file_path": "", "file_url": d["file_url"]})
    config = {"files": files, "download": download}
    ech = (v2_config or {}).get("embedded_component_hashes")
    if ech:
        config["embedded_component_hashes"] = ech
    config.update(block.get("config_extra") or {})
    order = block.get("config_order")
    if order:  # the legacy keys in their order; files/download only where the record had them
        rest = [k for k in config if k not in order and k not in _CONFIG_KEYS[:2]]
        config = {k: config[k] for k in [*order, *rest] if k in config}
    return config


def to_legacy(cat: Category, v2: dict, block: dict | None) -> dict:
    """The legacy record for a v2 record and its `legacy:` block."""
    block = block or {}
    omit = set(block.get("omit") or ())
    derived = _derived_fields(cat, v2)
    derived["config"] = legacy_config(v2.get("config"), block)
    derivable = _derivable(cat)
    values: dict[str, Any] = {}
    for f, v in derived.items():
        if f in block and _override_holds(cat, f, block[f], v2):
            v = block[f]
        values[f] = v
    for f, v in block.items():
        if f in HINT_KEYS or f in values:
            continue
        if f in derivable and not _override_holds(cat, f, v, v2):
            continue
        values[f] = v
    for f, v in _new_record_defaults(cat).items():
        values.setdefault(f, v)
    for f in omit:
        # an omitted v2 flag stays omitted only while it still says what its absence meant
        if f in _ABSENCE_MEANS and values.get(f) != _ABSENCE_MEANS[f]:
            continue
        values.pop(f, None)
    canonical = IMAGE_ORDER if cat.legacy_kind == "image" else GENERIC_ORDER
    order = list(block.get("field_order") or ()) + [f for f in canonical]
    out: dict[str, Any] = {}
    for f in order:
        if f in values and f not in out:
            out[f] = values[f]
    for f, v in values.items():
        if f not in out:
            out[f] = v
    return out


# --- legacy -> v2 ---------------------------------------------------------------------------------------


def _v2_config(key: str, legacy: dict) -> dict:
    config = legacy.get("config")
    if config is None:
        return {"download": []}
    if not isinstance(config, dict):
        raise LegacyFormatError(f"{key}: /config is not an object", pointer=json_pointer([key, "config"]))
    records: dict[str, dict] = {}
    for i, f in enumerate(config.get("files") or []):
        if not isinstance(f, dict):
            raise LegacyFormatError(f"{key}: /config/files/{i} is not an object",
                                    pointer=json_pointer([key, "config", "files", i]))
        path = f.get("path") or ""
        if not path or "yaml" in path.lower():
            continue
        rec: dict[str, Any] = {"file_name": path, "file_url": "", "sha256sum": f.get("sha256sum") or "FIXME"}
        if f.get("content_hash"):
            rec["content_hash"] = f["content_hash"]
        if f.get("file_type"):
            rec["file_purpose"] = f["file_type"]
        records[path] = rec
    for i, d in enumerate(config.get("download") or []):
        name = d.get("file_name") if isinstance(d, dict) else None
        if isinstance(name, str) and name and name not in records:
            records[name] = {"file_name": name, "file_url": "", "sha256sum": "FIXME"}
        if name not in records:
            raise LegacyFormatError(f"{key}: /config/download/{i}: download of {name!r} matches no config file",
                                    pointer=json_pointer([key, "config", "download", i]))
        records[name]["file_url"] = d.get("file_url") or ""
    out: dict[str, Any] = {"download": [_order_download(r) for r in records.values()]}
    if config.get("embedded_component_hashes"):
        out["embedded_component_hashes"] = config["embedded_component_hashes"]
    return out


def unlisted_downloads(legacy: dict) -> list[str]:
    """File names of a legacy record's downloads that match no `config.files` entry, in order."""
    config = legacy.get("config")
    if not isinstance(config, dict):
        return []
    paths = {f.get("path") for f in config.get("files") or [] if isinstance(f, dict)}
    paths = {p for p in paths if p and "yaml" not in p.lower()}
    names = [d.get("file_name") for d in config.get("download") or [] if isinstance(d, dict)]
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n and n not in paths))


def _order_download(d: dict) -> dict:
    order = ("file_name", "file_url", "sha256sum", "content_hash", "file_purpose", "known_slow_download",
             "size_bytes")
    return {k: d[k] for k in order if k in d}


def to_v2(cat: Category, key: str, legacy: dict) -> dict:
    """v2 fields of a legacy record, as the upstream converter computes them (absent stays absent)."""
    if not isinstance(legacy.get("name"), str):
        raise LegacyFormatError(f"{key}: /name is missing or not a string", pointer=json_pointer([key, "name"]))
    v2: dict[str, Any] = {"name": legacy["name"]}
    for f in ("description", "version"):
        if legacy.get(f) is not None:
            v2[f] = legacy[f]
    v2["config"] = _v2_config(key, legacy)
    if cat.legacy_kind == "image":
        if not isinstance(legacy.get("baseline"), str):
            raise LegacyFormatError(f"{key}: /baseline is missing or not a string",
                                    pointer=json_pointer([key, "baseline"]))
        for f in ("size_on_disk_bytes",):
            if legacy.get(f) is not None:
                v2[f] = legacy[f]
        if legacy.get("inpainting") is not None:
            v2["inpainting"] = legacy["inpainting"]
        v2["baseline"] = v2_baseline(legacy["baseline"])
        for f in ("optimization", "tags", "showcases", "min_bridge_version", "trigger", "homepage"):
            if legacy.get(f) is not None:
                v2[f] = legacy[f]
        v2["nsfw"] = bool(legacy.get("nsfw") or False)
        style = _v2_style(legacy.get("style"))
        if style is not None:
            v2["style"] = style
        if legacy.get("requirements") is not None:
            v2["requirements"] = legacy["requirements"]
    elif cat.name == "clip":
        if legacy.get("pretrained_name") is not None:
            v2["pretrained_name"] = legacy["pretrained_name"]
    elif cat.name == "controlnet":
        style = legacy.get("type") or legacy.get("style")
        if style is not None:
            v2["controlnet_style"] = style
    return v2


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def from_legacy(cat: Category, key: str, legacy: dict) -> tuple[dict, dict]:
    """(v2 fields, legacy block) such that `to_legacy(cat, v2, block)` equals `legacy` exactly."""
    if not isinstance(legacy, dict):
        raise LegacyFormatError(f"{key}: record is not an object", pointer=json_pointer([key]))
    clash = [h for h in HINT_KEYS if h in legacy]
    if clash:
        raise LegacyFormatError(f"{key}: /{clash[0]}: field name is reserved for the legacy block",
                                pointer=json_pointer([key, clash[0]]))
    v2 = to_v2(cat, key, legacy)
    derivable = _derivable(cat)
    block: dict[str, Any] = {f: copy.deepcopy(v) for f, v in legacy.items() if f not in derivable}
    unlisted = unlisted_downloads(legacy)
    if unlisted:
        block["unlisted"] = unlisted
    candidate = to_legacy(cat, v2, block)
    for f, v in legacy.items():
        if f in derivable and f != "config" and candidate.get(f, _MISSING) != v:
            block[f] = copy.deepcopy(v)
    omit = [f for f in candidate if f not in legacy]
    if omit:
        block["omit"] = omit
    if "config" in legacy:
        original = legacy["config"]
        if candidate.get("config") != original:
            block["files"] = copy.deepcopy(original.get("files") or [])
            if legacy_config(v2["config"], block) != original:
                block["download"] = copy.deepcopy(original.get("download") or [])
            extra = {k: copy.deepcopy(v) for k, v in original.items() if k not in _CONFIG_KEYS}
            if extra:
                block["config_extra"] = extra
            if list(legacy_config(v2["config"], block)) != list(original):
                block["config_order"] = list(original)
    candidate = to_legacy(cat, v2, block)
    if list(candidate) != list(legacy):
        block["field_order"] = list(legacy)
        candidate = to_legacy(cat, v2, block)
    if _dumps(candidate) != _dumps(legacy):
        raise LegacyFormatError(f"{key}: record cannot be represented losslessly (legacy fields "
                                f"{sorted(set(candidate) ^ set(legacy)) or 'values'} differ)", pointer=json_pointer([key]))
    return v2, _order_block(block)


_MISSING = object()


def _order_block(block: dict) -> dict:
    fields = {k: v for k, v in block.items() if k not in HINT_KEYS}
    hints = {k: block[k] for k in HINT_KEYS if k in block}
    return {**fields, **hints}


def order_v2(cat: Category, record: dict) -> dict:
    """Fields in v2 declaration order; unknown ones (which validation rejects) go last."""
    rank = {f: i for i, f in enumerate(V2_COMMON_ORDER + cat.v2_fields + ("parameters_count",))}
    return dict(sorted(record.items(), key=lambda kv: rank.get(kv[0], len(rank))))
