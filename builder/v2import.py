"""`hmr import-v2`: v2 category documents (a directory of them, or a PRIMARY's read API) -> `data/`.

The v2 documents are what the old PRIMARY serves at `model_references/v2/{category}` and what the
existing library caches (`stable_diffusion.json` for image_generation, `{category}.json` otherwise).
They carry what the legacy files cannot (the `controlnet_annotator` category, v2-only fields), and lack
what only v1 carries (each record's `legacy:` block). So the import merges: a record already in the data
keeps every field and its `legacy:` block, and takes each v2 field whose published value differs; a
record the data lacks is added. The fields the build derives (`record_type`, `model_classification`,
`metadata.schema_version`, a text record's default group, ...) are set only where the derivation would
not give the published value, so re-importing the same documents changes no file, and a legacy import
followed by a v2 import of the same PRIMARY builds back both.

Order of operations for a full copy of a PRIMARY: `hmr import-legacy` first (it rewrites the categories
it imports), then `hmr import-v2 --merge`-style (the default) on top. As with the legacy import,
everything is computed and validated on a scratch copy before a file of `data/` is written.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from builder.categories import CATEGORIES, Category
from builder.errors import ConfigError, DataError, FetchError
from builder.fs import prune_empty_dirs, write_changed
from builder.legacy.source import get_optional
from builder.records import SETTINGS_FILE, Record, dump_yaml, load, parse_file, record_path, render_record
from builder.routes import API, v2_key
from builder.v2 import v2_record

__all__ = ["V2ImportSummary", "import_v2", "read_v2_source"]

#: published fields the build always derives: never stored
_DERIVED = ("record_type", "model_classification")
#: the largest v2 category document accepted (the live image document is about 1 MB)
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


@dataclass
class V2ImportSummary:
    """What a v2 import did: records per category (added / changed), files written and left alone."""

    categories: dict[str, int] = field(default_factory=dict)
    added: int = 0
    changed: int = 0
    removed: int = 0
    written: int = 0
    unchanged: int = 0

    def describe(self) -> str:
        """The one-line summary `hmr import-v2` prints."""
        counts = ", ".join(f"{k} {v}" for k, v in self.categories.items()) or "nothing"
        return (f"imported {counts}; {self.added} record(s) added, {self.changed} changed, {self.removed} "
                f"removed; {self.written} file(s) written, {self.unchanged} unchanged")


def read_v2_source(src: str, timeout: float = 30.0) -> dict[str, tuple[str, dict[str, Any]]]:
    """category -> (where it was read, its v2 document) for every category `src` has.

    `src` is a directory of v2 category files, or an http(s) base URL of the read API (`https://host/api`):
    `model_references/v2/{category}` is read for every category, a 404 meaning the category is absent.

    Raises:
        ConfigError: `src` is neither a directory nor an http(s) URL.
        FetchError: a document could not be downloaded, or `src` has none.
        DataError: a document is not a JSON object of records.
    """
    raw: dict[str, tuple[str, bytes]] = {}
    if src.startswith(("http://", "https://")):
        import httpx

        base = src.rstrip("/")
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            for cat in CATEGORIES:
                # the base is the API root, as the old client's PRIMARY_API_URL is
                url = f"{base}/{v2_key(cat.name).removeprefix(API + '/')}"
                body = get_optional(client, url)
                if body is not None:
                    raw[cat.name] = (url, body)
        if not raw:
            raise FetchError(f"{src}: no v2 category document found there", src, 404)
    else:
        root = Path(src)
        if not root.is_dir():
            raise ConfigError(f"{src}: not a directory or an http(s) URL")
        for cat in CATEGORIES:
            for name in dict.fromkeys((cat.v2_file, f"{cat.name}.json")):
                path = root / name
                if path.is_file() and not path.is_symlink():
                    raw[cat.name] = (str(path), path.read_bytes())
                    break
        if not raw:
            raise DataError("holds no v2 category file (stable_diffusion.json, clip.json, ...)", src)
    return {name: (where, _document(where, body)) for name, (where, body) in raw.items()}


def _document(where: str, body: bytes) -> dict[str, Any]:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DataError(f"document over {MAX_DOCUMENT_BYTES} bytes", where)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise DataError(f"not JSON: {e}", where) from None
    if not isinstance(doc, dict):
        raise DataError("not a JSON object of records", where)
    for key, rec in doc.items():
        if not isinstance(rec, dict):
            raise DataError("record is not an object", where, _pointer(key))
    return doc


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def merged_record(cat: Category, key: str, published: Mapping[str, Any], old: dict | None) -> dict:
    """The data of `key` after the merge: `old` (or nothing) with every published v2 value it does not
    already produce, so that the build publishes `published` again."""
    out = copy.deepcopy(old) if old else {"name": key}

    def derived() -> dict[str, Any]:
        return v2_record(cat, Record(cat.name, key, Path(), out))

    for name, value in published.items():
        if name in _DERIVED:
            continue
        # a new record takes the document's values as they are (`nsfw: false` included); a known one only
        # what changes its meaning, so defaults the existing library fills in do not churn the files
        now = derived().get(name, _ABSENT)
        if now == value or (old is not None and _meaning(None if now is _ABSENT else now) == _meaning(value)):
            continue
        if name == "metadata" and isinstance(value, dict):
            # schema_version is the build's own; the rest is the record's
            meta = {k: v for k, v in value.items() if k != "schema_version"}
            if meta:
                out["metadata"] = meta
            else:
                out.pop("metadata", None)
            continue
        out[name] = copy.deepcopy(value)
    return out



_ABSENT = object()


def _meaning(value: Any) -> Any:
    """A value with its empty and false members dropped: the existing library fills in defaults
    (`known_slow_download: false`, `showcases: []`, ...) that say nothing a missing field does not."""
    if isinstance(value, dict):
        kept = {k: _meaning(v) for k, v in value.items()}
        value = {k: v for k, v in kept.items() if v is not None}
    elif isinstance(value, list):
        value = [_meaning(v) for v in value]
    empty = value is None or value is False or (isinstance(value, str | list | dict) and not value)
    return None if empty else value


def import_v2(src: str, data_dir: Path, prune: bool = False) -> V2ImportSummary:
    """Merge the v2 documents at `src` into `data_dir` (see the module docstring).

    With `prune`, records of an imported category that the source does not have are removed.

    Raises:
        ValidationFailed: the merged data would not validate (nothing is written).
        FetchError, ConfigError, DataError: `src` cannot be read.
    """
    docs = read_v2_source(src)
    cats, _problems = load(data_dir) if data_dir.is_dir() else ({}, [])
    summary = V2ImportSummary()
    writes: dict[Path, str] = {}
    removes: list[Path] = []
    for cat in CATEGORIES:
        if cat.name not in docs:
            continue
        _where, doc = docs[cat.name]
        cd = cats.get(cat.name)
        existing = cd.records if cd else {}
        summary.categories[cat.name] = len(doc)
        for key, published in doc.items():
            old = existing.get(key)
            new = merged_record(cat, key, published, old.data if old else None)
            if old is not None and new == old.data:
                continue
            path = old.path if old is not None else record_path(data_dir, cat.name, key, encode=True)
            writes[path] = render_record(cat.name, key, new)
            if old is None:
                summary.added += 1
            else:
                summary.changed += 1
        if prune:
            gone = [r for k, r in existing.items() if k not in doc]
            removes += [r.path for r in gone]
            summary.removed += len(gone)
        settings = _pinned_order(cat, cd.settings if cd else {}, list(doc), existing, data_dir)
        if settings is not None:
            writes[data_dir / cat.name / SETTINGS_FILE] = dump_yaml(settings)
    _check(data_dir, writes, removes)
    summary.written, summary.unchanged = write_changed(writes)
    for path in removes:
        path.unlink()
        prune_empty_dirs(data_dir, path.parent)
    return summary


def _pinned_order(cat: Category, settings: dict, order: list[str], existing: Mapping[str, Record],
                  data_dir: Path) -> dict | None:
    """New settings pinning the v2 document's order, for a category whose settings pin none and whose
    records would otherwise come out in another order; None when nothing needs writing."""
    if "order" in settings or set(order) <= set(existing) and list(existing)[: len(order)] == order:
        return None
    path = data_dir / cat.name / SETTINGS_FILE
    current = parse_file(path, path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {**(current if isinstance(current, dict) else {}), "order": order}


def _check(data_dir: Path, writes: Mapping[Path, str], removes: list[Path]) -> None:
    """Validate the data as it would be after the import, on a scratch copy; raise before writing."""
    from builder.errors import ValidationFailed
    from builder.load import load_valid

    with tempfile.TemporaryDirectory(prefix=".hmr-import-v2-") as tmp:
        scratch = Path(tmp, "data")
        if data_dir.is_dir():
            shutil.copytree(data_dir, scratch, symlinks=True)
        else:
            scratch.mkdir()
        for path, text in writes.items():
            target = scratch / path.relative_to(data_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for path in removes:
            (scratch / path.relative_to(data_dir)).unlink()
        try:
            load_valid(scratch, cache_from=data_dir if data_dir.is_dir() else None)
        except ValidationFailed as e:
            # the problems name the files the import would write, not the scratch copy's
            raise ValidationFailed([replace(p, file=p.file.replace(str(scratch), str(data_dir), 1))
                                    for p in e.problems]) from None
