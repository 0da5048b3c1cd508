"""The old API's search endpoints without parameters: `v2/search` and `v2/{category}/search`, the default page.

The old service answers `{results, total, offset, limit, has_more}` with the first `DEFAULT_LIMIT` (50)
records (categories in the category table's order for `v2/search`), each record as its typed model
dumps it (`exclude_none`): the model's field order, unknown fields dropped, a few defaults filled in
(`nsfw: false`, the image lists, ...), `parameters` under its field name `parameters_count`, and an
explicit "no licensing conclusion" when the record has none. A static site serves that default page;
parameterised searches need a rewrite to a service (docs/search.md), or the client's `query()`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from builder.routes import SEARCH_FILE, search_file

__all__ = ["DEFAULT_LIMIT", "UNKNOWN_LICENSING", "search_files", "search_page", "search_record"]

#: the old API's default (and, at most, 500) page size
DEFAULT_LIMIT = 50
#: what the old API reports for a record without a licensing conclusion
UNKNOWN_LICENSING: dict[str, Any] = {
    "license_expression": "NOASSERTION", "license_ids": [], "commercial_use": "unknown", "redistribution": "unknown",
    "obligations": [], "evidence": [], "notes": "No reviewed licensing conclusion is currently available.", "files": {},
}
#: the fields every record model has, in its order
_COMMON = ("record_type", "name", "description", "version", "finetune_series", "metadata", "config",
           "model_classification", "size_on_disk_bytes", "licensing")
_MEDIA = ("baseline", "nsfw", "tags")
_PATCH = ("baseline", "nsfw", "tags", "trigger", "homepage", "showcases")
#: each category's own fields, in its model's order
_FIELDS: dict[str, tuple[str, ...]] = {
    "clip": ("pretrained_name",),
    "controlnet": ("controlnet_style",),
    "controlnet_annotator": ("control_types", "preprocessors"),
    "image_generation": ("inpainting", "baseline", "optimization", "tags", "showcases", "min_bridge_version",
                         "trigger", "homepage", "nsfw", "style", "requirements"),
    "text_generation": ("baseline", "parameters_count", "nsfw", "style", "display_name", "url", "tags",
                        "instruct_format", "settings", "text_model_group", "name_schema_exception", "context_window",
                        "interaction_modes", "capabilities", "guidance"),
    "video_generation": _MEDIA, "audio_generation": _MEDIA, "lora": _PATCH, "ti": _PATCH,
}
#: the defaults a model fills in when the record leaves the field out (or null)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "image_generation": {"inpainting": False, "tags": [], "showcases": [], "trigger": []},
    "text_generation": {"nsfw": False},
    "controlnet_annotator": {"control_types": [], "preprocessors": []},
    "video_generation": {"nsfw": False}, "audio_generation": {"nsfw": False}, "lora": {"nsfw": False},
    "ti": {"nsfw": False},
}
#: record key -> model field name, where they differ
_RENAMED = {"parameters": "parameters_count"}


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def search_record(category: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """One published v2 record as the old search answers it (module docstring)."""
    data = {_RENAMED.get(k, k): v for k, v in record.items() if v is not None}
    for k, v in _DEFAULTS.get(category, {}).items():
        data.setdefault(k, v)
    out = {f: _without_none(data[f]) for f in (*_COMMON, *_FIELDS.get(category, ())) if f in data}
    out.setdefault("licensing", UNKNOWN_LICENSING)
    return out


def search_page(records: list[tuple[str, Mapping[str, Any]]], limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """The first page of (category, record) `records` in the old `SearchResponse` shape."""
    return {"results": [search_record(c, r) for c, r in records[:limit]], "total": len(records), "offset": 0,
            "limit": limit, "has_more": limit < len(records)}


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def search_files(v2: Mapping[str, Mapping[str, Mapping[str, Any]]], categories: list[str]) -> dict[str, bytes]:
    """`v2/search.json` over `categories` (in that order) and `v2/{category}/search.json` for each of them."""
    every = [(c, r) for c in categories for r in v2.get(c, {}).values()]
    out = {SEARCH_FILE: _json(search_page(every))}
    for c in categories:
        out[search_file(c)] = _json(search_page([(c, r) for r in v2.get(c, {}).values()]))
    return out
