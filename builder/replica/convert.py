"""Legacy GitHub files -> the v2 documents the CDN serves, with the code `hmr import-legacy` and
`hmr build` use (`builder.legacy.convert.records_from_legacy`, then `builder.v2.v2_record`), so a fallback to
GitHub yields the same records, values and order as the site built from the same legacy files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from builder.categories import Category
from builder.errors import HmrError
from builder.replica.errors import DocumentError


def legacy_source_file(cat: Category, kind: str) -> str | None:
    """The file of the legacy repository a document is made from: v2 of text comes from models.csv
    (as the existing client does), v1 of text is db.json (what v1 serves); None: GitHub has nothing."""
    if not cat.has_legacy:
        return None
    if kind == "v1":
        return cat.legacy_json_file
    return cat.legacy_file


def v2_from_legacy(cat: Category, raw: bytes) -> bytes:
    """The v2 category document (compact JSON, as the build writes it) from the legacy file's bytes.

    Raises:
        DocumentError: the legacy file cannot be converted (not the format, or not even JSON).
    """
    from builder.legacy.convert import records_from_legacy
    from builder.records import Record
    from builder.v2 import v2_record

    source = "models.csv" if cat.legacy_kind == "text" else (cat.legacy_file or "")
    try:
        records, _settings = records_from_legacy(cat, {source: raw})
    except HmrError as e:
        raise DocumentError(f"cannot convert the legacy file: {e}") from e
    except (ValueError, TypeError, KeyError) as e:  # anything the converters did not anticipate
        raise DocumentError(f"cannot convert the legacy file: {type(e).__name__}: {e}") from e
    doc: dict[str, Any] = {key: v2_record(cat, Record(cat.name, key, Path(), data)) for key, data in records.items()}
    return orjson.dumps(doc)
