"""Loading `data/` into records, and the order of each category's legacy file.

`data/<category>/<key>.yaml` (or `.json`): the path without extension is the model key; a key with
`/` is a sub-folder. `data/<category>/_category.yaml` holds category settings (the pinned order, and
for text the converter's defaults and settings whitelist). Problems (unreadable files, bad keys) are
collected, never raised, so `validate` can report every one of them in a single run.

Keys unsafe as a path get a derived, reversible file name: `builder.keys` (the site's paths use it too).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.cache import RecordCache, digest
from builder.categories import BY_NAME, CATEGORIES, Category
from builder.dataparse import _yaml, parse_file, read_data
from builder.dataparse import json_pointer as json_pointer  # re-exported: where the key layout's users look
from builder.errors import ParseError, Problem
from builder.keys import ENCODED_PREFIX, file_key, folded_key, key_problem, key_stem  # noqa: F401 - records' API too

RECORD_SUFFIXES = (".yaml", ".yml", ".json")
SETTINGS_FILE = "_category.yaml"
#: text_generation's group aliases (read by the text utilities stage, not a record)
ALIASES_FILE = "_aliases.yaml"
SCHEMA_HINT = "# yaml-language-server: $schema="

#: the text converter's defaults.json and generation_params.json keys, for data sets that do not pin them
TEXT_DEFAULTS = {"baseline": "", "parameters": None, "description": "", "version": "1", "style": "generalist",
                 "nsfw": False}
TEXT_GENERATION_PARAMS = (
    "n", "frmtadsnsp", "frmtrmblln", "frmtrmspch", "frmttriminc", "max_context_length", "max_length", "rep_pen",
    "rep_pen_range", "rep_pen_slope", "singleline", "temperature", "tfs", "top_a", "top_k", "top_p", "typical",
    "sampler_order", "use_default_badwordsids", "stop_sequence", "min_p", "smoothing_factor", "dynatemp_range",
    "dynatemp_exponent",
)


@dataclass
class Record:
    """One model record: its category, key, file, and the parsed data (v2 fields plus `legacy:`)."""

    category: str
    key: str
    path: Path
    data: dict
    #: hash of the file's bytes, and whether the record is known to pass its schema (a cache hit)
    digest: str = ""
    schema_ok: bool = False

    @property
    def v2(self) -> dict:
        """The record's v2 fields (the data without its `legacy:` block)."""
        return {k: v for k, v in self.data.items() if k != "legacy"}

    @property
    def legacy(self) -> dict | None:
        """The `legacy:` block (what only the legacy format carries), or None."""
        block = self.data.get("legacy")
        return block if isinstance(block, dict) else None


@dataclass
class CategoryData:
    """One category as loaded: its records in published order and its `_category.yaml` settings."""

    category: Category
    records: dict[str, Record] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    settings_path: Path | None = None
    #: cache key of the parsed settings file
    settings_digest: str | None = None

    @property
    def text_defaults(self) -> dict:
        """The text converter's defaults (db.json fields every text model gets)."""
        return self.settings.get("defaults") or dict(TEXT_DEFAULTS)

    @property
    def settings_whitelist(self) -> set[str]:
        """The generation parameters a text record's `settings` may hold."""
        params = self.settings.get("generation_params")
        return set(params) if isinstance(params, dict) else set(TEXT_GENERATION_PARAMS)




def record_path(data_dir: Path, category: str, key: str, suffix: str = ".yaml", encode: bool = False) -> Path:
    """Where a key's file lives; no key escapes the category folder.

    With `encode` (imported data: no key is refused) an unsafe key gets its encoded file name
    (`key_stem`); without it (new records) such a key is refused.

    Raises:
        ValueError: without `encode`, the key is unsafe as a path.
    """
    problem = key_problem(key)
    if problem and not encode:
        raise ValueError(f"{category}/{key!r}: {problem}")
    stem = key_stem(key) if encode else key
    base = (data_dir / category).resolve()
    path = (base / (stem + suffix)).resolve()
    if base not in path.parents:
        raise ValueError(f"{category}/{key!r}: key escapes the category folder")
    return data_dir / category / (stem + suffix)


def dump_yaml(value: Any) -> str:
    """YAML as data files are written: block style, key order kept, unicode as is, no line wrapping."""
    yaml, _, dumper = _yaml()
    return yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1 << 30,
                     default_flow_style=False)


def schema_hint(category: str, key: str) -> str:
    """First line of a record file: tells YAML-aware editors which schema to validate against."""
    depth = key.count("/") + 2
    return f"{SCHEMA_HINT}{'../' * depth}schemas/{category}.schema.json\n"


def render_record(category: str, key: str, data: dict) -> str:
    """The text of a new record file: the schema hint, then the data as YAML."""
    return schema_hint(category, key) + dump_yaml(data)


def _walk(root: Path, problems: list[Problem]) -> list[tuple[str, Path]]:
    """(relative path with '/', absolute path) of the regular files under root, sorted. Links and
    special files are refused by name (a problem each) and never opened: a linked folder could lead
    outside data/ and a FIFO would hang the read."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        real_dirs = []
        for name in sorted(dirnames):
            full = Path(dirpath) / name
            if full.is_symlink():
                problems.append(Problem(str(full), "", "folders in data/ must not be symbolic links (not followed)"))
            else:
                real_dirs.append(name)
        dirnames[:] = real_dirs
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            full = Path(dirpath) / name
            try:
                mode = full.lstat().st_mode
            except OSError:
                continue  # gone since the listing
            if stat.S_ISLNK(mode):
                problems.append(Problem(str(full), "", "data files must not be symbolic links (not read)"))
            elif not stat.S_ISREG(mode):
                problems.append(Problem(str(full), "", "not a regular file (not read)"))
            else:
                out.append((rel, full))
    return out


def load_category(data_dir: Path, cat: Category, problems: list[Problem],
                  cache: RecordCache | None = None) -> CategoryData:
    """One category folder's records (ordered) and settings; what cannot be read goes to `problems`.

    A file whose bytes `cache` knows is not parsed again and counts as schema-valid.
    """
    cd = CategoryData(cat)
    root = data_dir / cat.name
    if root.is_symlink():  # refused by name: following it would read (and name) what lies outside data/
        problems.append(Problem(str(root), "", "category folders must not be symbolic links (not followed)"))
        return cd
    if not root.is_dir():
        return cd
    settings_path = root / SETTINGS_FILE
    if settings_path.is_symlink() or (settings_path.exists() and not settings_path.is_file()):
        problems.append(Problem(str(settings_path), "", "settings files must be regular files, not links (not read)"))
    elif settings_path.exists():
        cd.settings_path = settings_path
        try:
            raw = read_data(settings_path)
            d = cd.settings_digest = "settings-" + digest(raw)
            settings = cache.get(d) if cache is not None else None
            if settings is None:
                settings = parse_file(settings_path, raw.decode("utf-8")) or {}
                if cache is not None and isinstance(settings, dict):
                    cache.put(d, settings)
            if not isinstance(settings, dict):
                problems.append(Problem(str(settings_path), "", "settings file is not a mapping"))
            else:
                cd.settings = settings
        except ParseError as e:
            problems.append(Problem(str(settings_path), e.pointer, _parse_message(e)))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            problems.append(Problem(str(settings_path), "", f"unreadable: {_one_line(e)}"))
    found: dict[str, Record] = {}
    folded: dict[str, str] = {}
    for rel, path in _walk(root, problems):
        if rel == SETTINGS_FILE or (rel == ALIASES_FILE and cat.name == "text_generation"):
            continue
        stem, suffix = os.path.splitext(rel)
        if suffix not in RECORD_SUFFIXES or rel.rsplit("/", 1)[-1].startswith("."):
            problems.append(Problem(str(path), "", "not a record file (expected .yaml, .yml or .json)", "warning"))
            continue
        decoded = stem if "/" in stem else file_key(stem)
        if decoded is None:
            bad: str | None = "not a valid encoded key (see builder.records)"
        else:
            bad = key_problem(decoded) if decoded == stem else None
        if bad or decoded is None:
            problems.append(Problem(str(path), "", bad or "unreadable key"))
            continue
        key = decoded
        fold = folded_key(key)
        if fold in folded:
            problems.append(Problem(str(path), "", f"duplicate key: {folded[fold]!r} differs only in case or extension, "
                                                   "or in Unicode normalization"))
            continue
        folded[fold] = key
        try:
            raw = read_data(path)
        except ParseError as e:
            problems.append(Problem(str(path), e.pointer, _parse_message(e)))
            continue
        except OSError as e:
            problems.append(Problem(str(path), "", f"unreadable: {e.strerror}"))
            continue
        d = digest(raw)
        hit = cache.get(d) if cache is not None else None
        if hit is not None:
            found[key] = Record(cat.name, key, path, hit, d, schema_ok=True)
            continue
        try:
            data = parse_file(path, raw.decode("utf-8"))
        except ParseError as e:
            problems.append(Problem(str(path), e.pointer, _parse_message(e)))
            continue
        except (ValueError, UnicodeDecodeError) as e:
            problems.append(Problem(str(path), "", f"unreadable: {_one_line(e)}"))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(str(path), "", "record is not a mapping"))
            continue
        found[key] = Record(cat.name, key, path, data, d)
    for fold, key in folded.items():  # `x` and `x.json`: the API's extensionless keys of the two collide
        if fold.endswith(".json") and fold[:-5] in folded and key in found:
            problems.append(Problem(str(found[key].path), "", f"key {key!r} collides with key {folded[fold[:-5]]!r} "
                                                              "in the API (its path without .json)"))
            del found[key]
    cd.records = order_records(found, cd.settings.get("order"))
    return cd


def order_records(records: dict[str, Record], pinned: Any) -> dict[str, Record]:
    """Pinned keys first (in their order), then the rest: oldest metadata.created_at first, then by key."""
    out: dict[str, Record] = {}
    for key in pinned if isinstance(pinned, list) else ():
        if isinstance(key, str) and key in records and key not in out:
            out[key] = records[key]

    def age(r: Record) -> tuple:
        meta = r.data.get("metadata")
        created = meta.get("created_at") if isinstance(meta, dict) else None
        return (created if isinstance(created, int) else 0, r.key)

    for r in sorted((r for k, r in records.items() if k not in out), key=age):
        out[r.key] = r
    return out


def load(data_dir: Path, cache: RecordCache | None = None) -> tuple[dict[str, CategoryData], list[Problem]]:
    """Every category's records (ordered) and the problems met while reading them."""
    problems: list[Problem] = []
    if not data_dir.is_dir():
        problems.append(Problem(str(data_dir), "", "data directory not found"))
        return {c.name: CategoryData(c) for c in CATEGORIES}, problems
    for entry in sorted(data_dir.iterdir()):
        if entry.is_dir() and entry.name not in BY_NAME and not entry.name.startswith("."):
            problems.append(Problem(str(entry), "", "unknown category folder"))
    cats = {c.name: load_category(data_dir, c, problems, cache) for c in CATEGORIES}
    return cats, problems


def _parse_message(e: ParseError) -> str:
    """One line: a syntax error says `unreadable: ...`, a limit or a refused construct says which."""
    return _one_line(e)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
