"""`hmr import-legacy`: legacy files (a directory or a raw GitHub base URL) -> `data/` records.

Everything is converted in memory first; a file that cannot be imported losslessly aborts the import
before anything is written. Then only files whose text changes are rewritten (temp file + rename), so
re-importing the same source changes nothing. For each category present in the source, record files
of models the source no longer has are removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.categories import LEGACY, TEXT_SETTINGS_FILES, Category
from builder.errors import HmrError
from builder.legacy import jsonrec, text
from builder.records import SETTINGS_FILE, dump_yaml, key_problem, record_path, render_record

SOURCE_FILES = tuple(c.legacy_file for c in LEGACY) + TEXT_SETTINGS_FILES + ("db.json",)


@dataclass
class ImportSummary:
    categories: dict[str, int] = field(default_factory=dict)  # category -> records imported
    written: int = 0
    removed: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def read_source(src: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The legacy files present at `src` (a directory, or an http(s) base URL), by file name."""
    if src.startswith(("http://", "https://")):
        import httpx

        base = src.rstrip("/") + "/"
        found: dict[str, bytes] = {}
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            for name in SOURCE_FILES:
                try:
                    r = client.get(base + name)
                except httpx.HTTPError as e:
                    raise HmrError(f"{base}{name}: {type(e).__name__}: {e}") from None
                if r.status_code == 404:
                    continue
                if r.status_code != 200:
                    raise HmrError(f"{base}{name}: HTTP {r.status_code}")
                found[name] = r.content
        if not found:
            raise HmrError(f"{src}: no legacy file found there")
        return found
    root = Path(src)
    if not root.is_dir():
        raise HmrError(f"{src}: not a directory or an http(s) URL")
    found = {name: (root / name).read_bytes() for name in SOURCE_FILES if (root / name).is_file()}
    if not found:
        raise HmrError(f"{src}: holds none of the legacy files ({', '.join(SOURCE_FILES[:3])}, ...)")
    return found


def _decode_json(name: str, raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HmrError(f"{name}: not valid JSON ({e})") from None


def convert_json_category(cat: Category, raw: bytes) -> dict[str, dict]:
    """key -> data-file content (v2 fields + legacy block) for one image-repo legacy file."""
    name = cat.legacy_file or cat.name
    doc = _decode_json(name, raw) if raw.strip() else {}
    if not isinstance(doc, dict):
        raise HmrError(f"{name}: top level is not an object")
    out: dict[str, dict] = {}
    for key, rec in doc.items():
        bad = key_problem(key)
        if bad:
            raise HmrError(f"{name}: /{key}: {bad}")
        try:
            v2, block = jsonrec.from_legacy(cat, key, rec)
        except jsonrec.LegacyFormatError as e:
            raise HmrError(f"{name}: {e}") from None
        data = jsonrec.order_v2(cat, v2)
        if block:
            data["legacy"] = block
        out[key] = data
    return out


def convert_text(files: dict[str, bytes]) -> tuple[dict[str, dict], dict]:
    """(key -> data-file content, category settings) from models.csv and the converter's settings."""
    from builder.categories import BY_NAME

    cat = BY_NAME["text_generation"]
    try:
        rows = text.parse_csv(files["models.csv"].decode("utf-8-sig"))
    except (UnicodeDecodeError, text.TextFormatError) as e:
        raise HmrError(f"models.csv: {e}") from None
    out: dict[str, dict] = {}
    for row in rows:
        bad = key_problem(row["name"])
        if bad:
            raise HmrError(f"models.csv: /{row['name']}: {bad}")
        try:
            v2, block = text.row_to_v2(row)
        except text.TextFormatError as e:
            raise HmrError(f"models.csv: {e}") from None
        data = jsonrec.order_v2(cat, v2)
        if block:
            data["legacy"] = block
        out[row["name"]] = data
    settings: dict = {}
    for fname, key in (("defaults.json", "defaults"), ("generation_params.json", "generation_params")):
        if fname in files:
            value = _decode_json(fname, files[fname])
            if not isinstance(value, dict):
                raise HmrError(f"{fname}: top level is not an object")
            settings[key] = value
    return out, settings


def import_legacy(src: str, data_dir: Path, progress: Callable[[str], None] | None = None) -> ImportSummary:
    files = read_source(src)
    summary = ImportSummary()
    # category -> (records, settings); all computed before anything is written
    planned: dict[str, tuple[dict[str, dict], dict]] = {}
    for cat in LEGACY:
        if cat.legacy_kind == "text":
            if "models.csv" not in files:
                continue
            records, settings = convert_text(files)
        elif cat.legacy_file in files:
            records, settings = convert_json_category(cat, files[cat.legacy_file]), {}
        else:
            continue
        settings = {"order": list(records), **settings}
        planned[cat.name] = (records, settings)
        summary.categories[cat.name] = len(records)
        if progress:
            progress(cat.name)
    if "db.json" in files and "text_generation" in planned:
        summary.warnings += _check_db_json(files, *planned["text_generation"])

    writes: dict[Path, str] = {}
    for cat_name, (records, settings) in planned.items():
        old_settings = data_dir / cat_name / SETTINGS_FILE
        merged = _merge_settings(old_settings, settings)
        writes[old_settings] = dump_yaml(merged)
        for key, data in records.items():
            writes[record_path(data_dir, cat_name, key)] = render_record(cat_name, key, data)
    stale = []
    for cat_name in planned:
        root = data_dir / cat_name
        if root.is_dir():
            for dirpath, _dirs, names in os.walk(root):
                for n in names:
                    p = Path(dirpath) / n
                    if p not in writes and p.suffix in (".yaml", ".yml", ".json"):
                        stale.append(p)
    for path, content in writes.items():
        if path.exists() and path.read_text(encoding="utf-8") == content:
            summary.unchanged += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
        summary.written += 1
    for p in stale:
        p.unlink()
        summary.removed += 1
        _prune_empty_dirs(p.parent, data_dir)
    return summary


def _merge_settings(path: Path, new: dict) -> dict:
    """The imported settings, keeping settings the source does not carry (e.g. text defaults)."""
    from builder.records import parse_file

    old: dict = {}
    if path.exists():
        try:
            loaded = parse_file(path, path.read_text(encoding="utf-8"))
            old = loaded if isinstance(loaded, dict) else {}
        except Exception:  # noqa: BLE001 - an unreadable old file is simply replaced
            old = {}
    return {**old, **new}


def _check_db_json(files: dict[str, bytes], records: dict[str, dict], settings: dict) -> list[str]:
    """db.json is generated from models.csv; when the source has one, say whether it is up to date."""
    from builder.records import TEXT_DEFAULTS

    rows = [text.v2_to_row(r, r.get("legacy")) for r in records.values()]
    try:
        expected = text.db_json(rows, settings.get("defaults", TEXT_DEFAULTS), None)
    except (ValueError, text.TextFormatError) as e:
        return [f"db.json: cannot regenerate it from models.csv ({e})"]
    if json.loads(files["db.json"]) != expected:
        return ["db.json: differs from what models.csv generates (the build writes the regenerated one)"]
    return []


def _prune_empty_dirs(d: Path, stop: Path) -> None:
    while d != stop and d.is_dir() and not any(d.iterdir()):
        d.rmdir()
        d = d.parent
