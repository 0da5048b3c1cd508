"""The v2 record as it is published: what `horde-model-reference` 8.6.2 clients read.

Shared by the build (category files, per-model files) and the replica client's GitHub fallback (which
turns legacy files into the same documents), so both publish the same fields in the same order.
"""

from __future__ import annotations

from typing import Any

from builder.categories import V2_SCHEMA_VERSION, Category
from builder.records import Record

__all__ = ["v2_record"]


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
