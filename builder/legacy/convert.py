"""The two entry points of legacy conversion, one each way.

- `records_from_legacy(cat, files)`: legacy files -> v2 record data by key (and the text settings);
  used by `hmr import-legacy`, by `canonical_format = legacy` loading and by the replica client's
  GitHub fallback, so all three read a legacy file the same way.
- `legacy_files(cd)`: loaded records -> the bytes of the legacy files, as the build publishes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.categories import Category
from builder.legacy import jsonrec, text
from builder.legacy.jsonfmt import dumps_legacy, dumps_settings
from builder.records import CategoryData

__all__ = ["legacy_files", "records_from_legacy"]


def records_from_legacy(cat: Category, files: Mapping[str, bytes]) -> tuple[dict[str, dict], dict | None]:
    """(key -> v2 record data, the text category's settings or None) from a legacy source's files
    (file name -> bytes). An empty mapping when `files` holds nothing of `cat`.

    Raises:
        LegacyFormatError: a record cannot be represented (TextFormatError for the text files).
        ParseError: a file is not well-formed.
    """
    from builder.legacy.importer import convert_json_category, convert_text

    if cat.legacy_kind == "text":
        if "models.csv" not in files:
            return {}, None
        records, settings = convert_text(dict(files))
        return records, settings
    if cat.legacy_kind in ("image", "generic") and cat.legacy_file is not None and cat.legacy_file in files:
        return convert_json_category(cat, files[cat.legacy_file]), None
    return {}, None


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
