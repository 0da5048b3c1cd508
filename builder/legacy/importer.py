"""`hmr import-legacy`: legacy files (a directory or a raw GitHub base URL) -> `data/` records.

Reading the source is `builder.legacy.source`, converting it `builder.legacy.convert.records_from_legacy`
(the same conversion `canonical_format = legacy` loading and the replica's GitHub fallback use).
Everything is converted in memory first; a file that cannot be imported losslessly aborts the import
before anything is written. Then only files whose text changes are rewritten (atomically), so
re-importing the same source changes nothing. For each category present in the source, record files
of models the source no longer has are removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.categories import LEGACY
from builder.fs import prune_empty_dirs, walk_files, write_changed
from builder.legacy import text
from builder.legacy.convert import LAYOUT_KEY, records_from_legacy
from builder.legacy.source import read_source
from builder.records import (
    RECORD_SUFFIXES,
    SETTINGS_FILE,
    TEXT_DEFAULTS,
    dump_yaml,
    parse_file,
    record_path,
    render_record,
)

__all__ = ["ImportSummary", "import_legacy"]


@dataclass
class ImportSummary:
    """What an import did: records per category, files written, removed and left as they were."""

    categories: dict[str, int] = field(default_factory=dict)  # category -> records imported
    written: int = 0
    removed: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The one-line summary `hmr import-legacy` prints."""
        counts = ", ".join(f"{k} {v}" for k, v in self.categories.items())
        return (f"imported {counts}; {self.written} file(s) written, {self.removed} removed, "
                f"{self.unchanged} unchanged")


def import_legacy(src: str, data_dir: Path, progress: Callable[[str], None] | None = None) -> ImportSummary:
    """Convert the legacy files at `src` (a directory or a raw GitHub base URL) into `data_dir`.

    Every category is converted before anything is written; `progress(category)` is called after each.

    Raises:
        LegacyFormatError: a record cannot be imported losslessly (nothing is written).
        ParseError: a legacy file is not well-formed (nothing is written).
        FetchError, ConfigError, DataError: `src` cannot be read (see `read_source`).
    """
    files = read_source(src)
    summary = ImportSummary()
    # category -> (records, settings); all computed before anything is written
    planned: dict[str, tuple[dict[str, dict], dict]] = {}
    for cat in LEGACY:
        records, settings = records_from_legacy(cat, files)
        if settings is None:  # the source has no file of this category
            continue
        planned[cat.name] = (records, {"order": list(records), **settings})
        summary.categories[cat.name] = len(records)
        if progress:
            progress(cat.name)
    if "db.json" in files and "text_generation" in planned:
        summary.warnings += _check_db_json(files, *planned["text_generation"])
    _write(data_dir, planned, summary)
    return summary


def _write(data_dir: Path, planned: dict[str, tuple[dict[str, dict], dict]], summary: ImportSummary) -> None:
    """Rewrite only the files whose text changes; remove record files the source no longer has."""
    writes: dict[Path, str] = {}
    for cat_name, (records, settings) in planned.items():
        settings_path = data_dir / cat_name / SETTINGS_FILE
        writes[settings_path] = dump_yaml(_merge_settings(settings_path, settings))
        for key, data in records.items():
            writes[record_path(data_dir, cat_name, key, encode=True)] = render_record(cat_name, key, data)
    stale: list[Path] = []
    for cat_name in planned:
        root = data_dir / cat_name
        stale += [p for p in (root / rel for rel in sorted(walk_files(root)))
                  if p not in writes and p.suffix in RECORD_SUFFIXES]
    summary.written, summary.unchanged = write_changed(writes)
    for p in stale:
        p.unlink()
        summary.removed += 1
        prune_empty_dirs(data_dir, p.parent)


def _merge_settings(path: Path, new: dict) -> dict:
    """The imported settings, keeping settings the source does not carry (e.g. text defaults)."""
    old: dict = {}
    if path.exists():
        try:
            loaded = parse_file(path, path.read_text(encoding="utf-8"))
            old = loaded if isinstance(loaded, dict) else {}
        except Exception:  # noqa: BLE001 - an unreadable old file is simply replaced
            old = {}
    old.pop(LAYOUT_KEY, None)  # the layout is the new source's, or none
    return {**old, **new}


def _check_db_json(files: dict[str, bytes], records: dict[str, dict], settings: dict) -> list[str]:
    """db.json is generated from models.csv; when the source has one, say whether it is up to date."""
    layout = settings.get(LAYOUT_KEY)
    table = text.file_rows([(text.v2_to_row(r, r.get("legacy")), r.get("legacy")) for r in records.values()], layout)
    try:
        expected = text.db_json(text.db_rows(table, layout), settings.get("defaults", TEXT_DEFAULTS), None)
    except ValueError as e:  # a TextFormatError too
        return [f"db.json: cannot regenerate it from models.csv ({e})"]
    if json.loads(files["db.json"]) != expected:
        return ["db.json: differs from what models.csv generates (the build writes the regenerated one)"]
    return []
