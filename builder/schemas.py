"""JSON Schemas (draft 2020-12) of the data files, one per category, plus `_category.yaml`.

The committed schema files are generated from here (`python -m builder.schemas`), beside the three
written by hand (index, changes, manifest): the package's copy `builder/site/schemas/` is what a build
publishes (package data: an installed package needs no checkout), and the repository's `schemas/` is a
mirror of it for editors (the data files' `$schema` hint points there). Tests keep all of them equal, so
editors and `hmr validate` check the same rules.
Each schema is self-contained so an editor needs no reference resolution.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from builder.categories import (
    BASELINE_ALIASES,
    CATEGORIES,
    CONTROLNET_STYLES,
    KNOWN_BASELINES,
    MODEL_STYLES,
    Category,
)
from builder.fs import atomic_write

SCHEMA_ROOT_URL = "https://models.aihorde.net/schemas/"
SHA256_PATTERN = "^([0-9a-fA-F]{64}|FIXME)$"
HTTPS_PATTERN = "^https://[^\\s]+$"
# Download URLs may be empty (upstream records without a download), never anything but https.
OPTIONAL_HTTPS_PATTERN = "^(https://[^\\s]+)?$"

_STR = {"type": "string"}
#: models.csv's columns (builder.legacy.text.CSV_HEADER, spelled here so the schemas import no converter)
_CSV_COLUMNS = ("name", "parameters_bn", "display_name", "url", "baseline", "description", "style", "tags",
                "instruct_format", "settings")
_SCALAR = {"type": ["integer", "number", "string", "boolean"]}
_FLAT_VALUE = {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]}
_STR_LIST = {"type": "array", "items": _STR}


def _download() -> dict:
    return {
        "type": "object",
        "description": "One file a worker downloads.",
        "required": ["file_name", "file_url"],
        "additionalProperties": False,
        "properties": {
            "file_name": {"type": "string", "minLength": 1, "description": "File name on the worker's disk."},
            "file_url": {"type": "string", "pattern": OPTIONAL_HTTPS_PATTERN, "format": "uri"},
            "sha256sum": {"type": "string", "pattern": SHA256_PATTERN,
                          "description": "64 hex digits, or FIXME when unknown."},
            "content_hash": {"type": ["string", "null"]},
            "file_purpose": {"type": ["string", "null"]},
            "known_slow_download": {"type": ["boolean", "null"]},
            "size_bytes": {"type": ["integer", "null"], "minimum": 0},
        },
    }


def _common(cat: Category) -> dict[str, Any]:
    return {
        "record_type": {"const": cat.name},
        "name": {"type": "string", "minLength": 1},
        "description": {"type": ["string", "null"]},
        "version": {"type": ["string", "null"]},
        "finetune_series": {
            "type": ["object", "null"], "required": ["name"], "additionalProperties": False,
            "properties": {k: _STR for k in ("name", "version", "author", "description", "homepage")},
        },
        "metadata": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "schema_version": _STR,
                "created_at": {"type": ["integer", "null"], "minimum": 0},
                "updated_at": {"type": ["integer", "null"], "minimum": 0},
                "created_by": {"type": ["string", "null"]},
                "updated_by": {"type": ["string", "null"]},
            },
        },
        "config": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "download": {"type": "array", "items": _download()},
                "embedded_component_hashes": {"type": ["object", "null"], "additionalProperties": _STR},
            },
        },
        "model_classification": {
            "type": "object", "additionalProperties": False,
            "properties": {"domain": {"const": cat.domain}, "purpose": {"const": cat.purpose}},
        },
        "size_on_disk_bytes": {"type": ["integer", "null"], "minimum": 0},
    }


def _legacy_json_block(cat: Category) -> dict:
    file_entry = {"type": "object", "required": ["path"], "properties": {"path": _STR}}
    download_entry = {"type": "object", "required": ["file_name"], "properties": {"file_name": _STR}}
    return {
        "type": "object",
        "description": "What only the legacy file carries (kept for byte-faithful v1 output; never in v2).",
        "properties": {
            "type": _STR,
            "download_all": {"type": "boolean"},
            "available": {"type": "boolean"},
            "features_not_supported": _STR_LIST,
            "baseline": _STR,
            "style": _STR,
            "omit": {**_STR_LIST, "description": "Fields the legacy record leaves out."},
            "field_order": {**_STR_LIST, "description": "Legacy key order, where it is not the canonical one."},
            "files": {"type": "array", "items": file_entry,
                      "description": "legacy config.files entries; v2 values win over theirs."},
            "download": {"type": "array", "items": download_entry},
        },
    }


def _legacy_text_block() -> dict:
    return {
        "type": "object",
        "description": "Raw models.csv cells where they differ from what the v2 value prints as.",
        "additionalProperties": False,
        "properties": {
            "parameters_bn": _STR, "tags": _STR, "settings": _STR,
            # import quirks of the row (kept so the build writes it back; warnings, errors under --strict)
            "extra_cells": {"type": "array", "items": _STR, "minItems": 1,
                            "description": "Cells the row had beyond the file's columns."},
            "cells": {"type": "integer", "minimum": 1,
                      "description": "The row had only this many cells (fewer than the file's columns)."},
        },
    }


def _legacy_layout() -> dict:
    """`legacy_layout` of `_category.yaml`: how the imported legacy file was laid out where that is not
    the category's own layout, so the build writes it back byte for byte (machine-formatted JSON) or
    row for row (models.csv). Written by `hmr import-legacy`; each entry is an import quirk."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Layout of the imported legacy file where it is not the category's own (written "
                       "by hmr import-legacy; each entry is reported as a warning, an error under --strict).",
        "properties": {
            "indent": {"enum": [4, "\t"], "description": "JSON indent, when not the category's."},
            "ascii": {"const": False, "description": "JSON: non-ASCII characters written as they are."},
            "line_ending": {"enum": ["lf", "crlf"], "description": "When not the file's usual one."},
            "final_newline": {"const": False, "description": "The file does not end with a line break."},
            "header": {"const": False, "description": "models.csv: no header row."},
            "columns": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": ["parameters", *_CSV_COLUMNS]},
                        "description": "models.csv: its columns, in order, when not the usual ones "
                                       "(`parameters` is a count, not billions)."},
            "extra_rows": {
                "type": "array",
                "description": "models.csv: rows that are not a model's own row (an earlier copy of a "
                               "repeated name, a row that cannot be read as a model), at their positions.",
                "items": {"type": "object", "additionalProperties": False, "required": ["at", "cells"],
                          "properties": {"at": {"type": "integer", "minimum": 0},
                                         "cells": {"type": "array", "items": _STR}}},
            },
        },
    }


def record_schema(cat: Category) -> dict:
    """The JSON Schema (2020-12) of one category's record files."""
    props = _common(cat)
    required = ["name"]
    if cat.name == "image_generation":
        props.update({
            "inpainting": {"type": ["boolean", "null"]},
            "baseline": {"enum": list(KNOWN_BASELINES) + list(BASELINE_ALIASES)},
            "optimization": {"type": ["string", "null"]},
            "tags": {"type": ["array", "null"], "items": _STR},
            "showcases": {"type": ["array", "null"], "items": {"type": "string", "pattern": HTTPS_PATTERN}},
            "min_bridge_version": {"type": ["integer", "null"]},
            "trigger": {"type": ["array", "null"], "items": _STR},
            "homepage": {"type": ["string", "null"], "pattern": HTTPS_PATTERN},
            "nsfw": {"type": "boolean"},
            "style": {"enum": list(MODEL_STYLES) + [None]},
            "requirements": {"type": ["object", "null"], "additionalProperties": _FLAT_VALUE},
        })
        required += ["baseline", "nsfw"]
    elif cat.name == "text_generation":
        props.update({
            "baseline": {"type": ["string", "null"]},
            "parameters": {"type": "integer", "minimum": 0},
            "parameters_count": {"type": "integer", "minimum": 0},
            "nsfw": {"type": "boolean"},
            "style": {"type": ["string", "null"]},
            "display_name": {"type": ["string", "null"]},
            "url": {"type": ["string", "null"], "pattern": OPTIONAL_HTTPS_PATTERN},
            "tags": {"type": ["array", "null"], "items": _STR},
            "instruct_format": {"type": ["string", "null"]},
            "settings": {"type": ["object", "null"], "additionalProperties": _FLAT_VALUE},
            "text_model_group": {"type": ["string", "null"]},
            "name_schema_exception": {"type": ["string", "null"]},
        })
    else:
        extra: dict[str, Any] = {
            "pretrained_name": {"type": ["string", "null"]},
            "controlnet_style": {"enum": list(CONTROLNET_STYLES) + [None]},
            "control_types": _STR_LIST,
            "preprocessors": _STR_LIST,
            "baseline": {"type": ["string", "null"]},
            "nsfw": {"type": "boolean"},
            "tags": {"type": ["array", "null"], "items": _STR},
            "trigger": {"type": ["array", "null"], "items": _STR},
            "homepage": {"type": ["string", "null"], "pattern": HTTPS_PATTERN},
            "showcases": {"type": ["array", "null"], "items": {"type": "string", "pattern": HTTPS_PATTERN}},
        }
        props.update({f: extra[f] for f in cat.v2_fields})
    if cat.has_legacy:
        props["legacy"] = _legacy_text_block() if cat.legacy_kind == "text" else _legacy_json_block(cat)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ROOT_URL}{cat.name}.schema.json",
        "title": f"AI-Horde model reference: one {cat.name} model",
        "description": f"data/{cat.name}/<model key>.yaml; the file path (without extension) is the model key.",
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": props,
    }
    if cat.name == "text_generation":
        schema["anyOf"] = [{"required": ["parameters"]}, {"required": ["parameters_count"]}]
    return schema


def category_settings_schema() -> dict:
    """The JSON Schema (2020-12) of `_category.yaml`, the settings file of every category."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ROOT_URL}_category.schema.json",
        "title": "AI-Horde model reference: settings of one category (data/<category>/_category.yaml)",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "order": {"type": "array", "items": _STR, "uniqueItems": True,
                      "description": "Pinned order of the legacy file; unlisted keys follow, oldest first."},
            "defaults": {"type": "object", "description": "text: the converter's defaults.json"},
            "generation_params": {"type": "object", "description": "text: generation_params.json (its keys "
                                  "are the settings whitelist)"},
            "renames": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                        "description": "Former model key -> current key (written by `hmr model rename`, "
                                       "published so clients can resolve old names)."},
            "legacy_layout": _legacy_layout(),
        },
    }


def group_aliases_schema() -> dict:
    """The JSON Schema (2020-12) of `data/text_generation/_aliases.yaml`: canonical group -> the base
    names that belong to it (the old API's alias store, in its file's shape)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ROOT_URL}_aliases.schema.json",
        "title": "AI-Horde model reference: text model group aliases (data/text_generation/_aliases.yaml)",
        "type": "object",
        "propertyNames": {"minLength": 1},
        "additionalProperties": {
            "type": "object", "additionalProperties": False, "required": ["aliases"],
            "properties": {"aliases": {"type": "array", "items": _STR, "uniqueItems": True,
                                       "description": "Base names resolved to the canonical group."}},
        },
    }


def all_schemas() -> dict[str, dict]:
    """File name under schemas/ -> schema."""
    out = {f"{c.name}.schema.json": record_schema(c) for c in CATEGORIES}
    out["_category.schema.json"] = category_settings_schema()
    out["_aliases.schema.json"] = group_aliases_schema()
    return out


def render(schema: dict) -> str:
    """A schema as committed under schemas/ (indent 2, trailing newline)."""
    return json.dumps(schema, indent=2) + "\n"


def mirror(src: Path, dest: Path) -> list[str]:
    """Make `dest` hold the same `*.json` files as `src`, byte for byte; returns the names that changed."""
    dest.mkdir(parents=True, exist_ok=True)
    changed = []
    wanted = {p.name: p.read_bytes() for p in src.glob("*.json")}
    for name, content in sorted(wanted.items()):
        p = dest / name
        if not p.is_file() or p.read_bytes() != content:
            atomic_write(p, content)
            changed.append(name)
    for p in sorted(dest.glob("*.json")):
        if p.name not in wanted:
            p.unlink()
            changed.append(p.name)
    return changed


def write(dest: Path) -> list[str]:
    """Write the schemas into `dest`; returns the names of files that changed."""
    dest.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, schema in all_schemas().items():
        p = dest / name
        text = render(schema)
        if not p.exists() or p.read_text() != text:
            atomic_write(p, text.encode())
            changed.append(name)
    return changed


if __name__ == "__main__":
    # `python -m builder.schemas [DIR]`: DIR, or else the package's copy and, run from the repository's
    # root, its `schemas/` mirror
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        for n in write(target):
            print("wrote", target / n)
        sys.exit(0)
    from importlib.resources import files

    packaged = files("builder.site") / "schemas"
    if not isinstance(packaged, Path):
        sys.exit("error: the package is not installed as plain files: pass a folder to write to")
    for n in write(packaged):
        print("wrote", packaged / n)
    if Path("schemas").is_dir():
        for n in mirror(packaged, Path("schemas")):
            print("mirrored", Path("schemas") / n)
