"""The two entry points of legacy conversion, one each way, and the one place that picks a converter.

- `records_from_legacy(cat, files)`: legacy files -> v2 record data by key (and the category's
  settings); used by `hmr import-legacy`, by `canonical_format = legacy` loading and by the replica
  client's GitHub fallback, so all three read a legacy file the same way.
- `legacy_files(cd)`: loaded records -> the bytes of the legacy files, as the build publishes them.

Which converter serves which category (`jsonrec` for the image repo's JSON files, `text` for the text
repo's models.csv) is decided here and nowhere else. No I/O: reading a legacy source is
`builder.legacy.source`, writing `data/` is `builder.legacy.importer`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from builder.categories import BY_NAME, Category
from builder.errors import DataError, LegacyFormatError, ParseError
from builder.legacy import jsonrec, text
from builder.legacy.jsonfmt import detect_layout, dumps_legacy, dumps_settings, line_layout
from builder.legacy.shape import check_legacy_record
from builder.records import CategoryData

__all__ = ["LAYOUT_KEY", "legacy_error", "legacy_files", "records_from_legacy"]

E = TypeVar("E", bound=DataError)

#: the text repo's converter settings: file name -> key in the category settings
#: the category setting that keeps an imported legacy file's layout (final newline, CRLF, CSV columns, ...)
LAYOUT_KEY = "legacy_layout"
_TEXT_SETTINGS = (("defaults.json", "defaults"), ("generation_params.json", "generation_params"))


def records_from_legacy(cat: Category, files: Mapping[str, bytes]) -> tuple[dict[str, dict], dict | None]:
    """(key -> v2 record data, the category settings the legacy files carry) from a legacy source's
    files (file name -> bytes). Settings are None when `files` holds nothing of `cat`, so an empty
    but present legacy file ({} , None) is told apart from an absent one; a JSON category's settings
    are {} (only the text repo carries converter settings).

    Raises:
        LegacyFormatError: a record cannot be represented (TextFormatError for the text files).
        ParseError: a file is not well-formed.
    """
    if cat.legacy_kind == "text":
        if "models.csv" not in files:
            return {}, None
        return _convert_text(files)
    if cat.legacy_kind in ("image", "generic") and cat.legacy_file is not None and cat.legacy_file in files:
        return _convert_json(cat, files[cat.legacy_file])
    return {}, None


def legacy_error(cls: type[E], file: str, message: str, pointer: str = "", text: str | None = None) -> E:
    """A `cls` (a DataError) with its structured fields, worded `FILE: message` (or `FILE: text`) as
    legacy conversion errors have always been printed (and as callers match them)."""
    err = cls(f"{file}: {text if text is not None else message}")
    err.file, err.pointer, err.message = file, pointer, message
    return err


def _in_file(e: LegacyFormatError, file: str) -> LegacyFormatError:
    """A converter's error (located within the record) located in `file` too."""
    return legacy_error(type(e), file, e.message, e.pointer, str(e))


def _decode_json(name: str, raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise legacy_error(ParseError, name, f"not valid JSON ({' '.join(str(e).split())})") from None
    except RecursionError:  # far deeper than any record: the data limits refuse it anyway
        raise legacy_error(ParseError, name, "not valid JSON (nested too deeply)") from None


def _object_file(name: str, raw: bytes) -> dict:
    doc = _decode_json(name, raw)
    if not isinstance(doc, dict):
        raise legacy_error(LegacyFormatError, name, "top level is not an object")
    return doc


def _with_block(cat: Category, v2: dict, block: dict) -> dict:
    data = jsonrec.order_v2(cat, v2)
    if block:
        data["legacy"] = block
    return data


def _convert_json(cat: Category, raw: bytes) -> tuple[dict[str, dict], dict]:
    """(key -> data-file content (v2 fields + legacy block), category settings) for one image-repo
    legacy file; the settings keep the file's byte layout where it is not the category's own."""
    name = cat.legacy_file or cat.name
    out: dict[str, dict] = {}
    # an empty image-repo file is an empty category (the text repo's settings files may not be empty)
    doc = _object_file(name, raw) if raw.strip() else {}
    for key, rec in doc.items():
        try:
            check_legacy_record(key, rec)
            v2, block = jsonrec.from_legacy(cat, key, rec)
        except LegacyFormatError as e:
            raise _in_file(e, name) from None
        out[key] = _with_block(cat, v2, block)
    quirks = detect_layout(raw, doc, cat.legacy_layout) if raw.strip() else {}
    return out, ({LAYOUT_KEY: quirks} if quirks else {})


def _convert_text(files: Mapping[str, bytes]) -> tuple[dict[str, dict], dict]:
    """(key -> data-file content, category settings) from models.csv and the converter's settings;
    the settings keep the file's layout and odd rows (`text.read_csv`), the records their row quirks."""
    cat = BY_NAME["text_generation"]
    raw = files["models.csv"]
    try:
        rows, layout = text.read_csv(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise legacy_error(ParseError, "models.csv", str(e)) from None
    except LegacyFormatError as e:
        raise _in_file(e, "models.csv") from None
    out: dict[str, dict] = {}
    for row, quirks in rows:
        try:
            v2, block = text.row_to_v2(row)
        except LegacyFormatError as e:  # read_csv keeps such rows apart: not reached
            raise _in_file(e, "models.csv") from None
        out[row["name"]] = _with_block(cat, v2, {**block, **quirks})
    settings: dict = {key: _object_file(fname, files[fname]) for fname, key in _TEXT_SETTINGS if fname in files}
    layout.update(line_layout(raw, "crlf"))
    if layout:
        settings[LAYOUT_KEY] = layout
    return out, settings


def legacy_records(cd: CategoryData) -> dict[str, dict]:
    """The legacy JSON object of an image-repo category, in legacy order."""
    return {key: jsonrec.to_legacy(cd.category, rec.v2, rec.legacy) for key, rec in cd.records.items()}


def text_rows(cd: CategoryData) -> list[dict[str, str]]:
    """The model rows of the text category, in legacy order."""
    return [text.v2_to_row(rec.v2, rec.legacy) for rec in cd.records.values()]


def text_table(cd: CategoryData) -> list[list[str]]:
    """Every data row of models.csv (the kept odd rows included), in file order."""
    return text.file_rows([(text.v2_to_row(rec.v2, rec.legacy), rec.legacy) for rec in cd.records.values()],
                          cd.settings.get(LAYOUT_KEY))


def legacy_files(cd: CategoryData) -> dict[str, bytes]:
    """File name -> bytes of what the legacy GitHub repository holds for this category."""
    cat = cd.category
    if not cat.has_legacy:
        return {}
    layout = cd.settings.get(LAYOUT_KEY)
    if cat.legacy_kind == "text":
        table = text_table(cd)
        db = text.db_json(text.db_rows(table, layout), cd.text_defaults, cd.settings_whitelist)
        out = {"models.csv": text.write_csv(table, layout).encode("utf-8"), "db.json": dumps_legacy(db, "indent4")}
        if "defaults" in cd.settings:
            out["defaults.json"] = dumps_settings(cd.settings["defaults"])
        if "generation_params" in cd.settings:
            out["generation_params.json"] = dumps_settings(cd.settings["generation_params"])
        return out
    assert cat.legacy_file is not None
    return {cat.legacy_file: dumps_legacy(legacy_records(cd), cat.legacy_layout, layout)}
