"""A legacy source (a directory, or the raw GitHub base URL of a legacy repository): its files, and
its records loaded in memory (`canonical_format = legacy`).

The conversion itself is `builder.legacy.convert.records_from_legacy`; this module only reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.categories import CATEGORIES, LEGACY, TEXT_SETTINGS_FILES
from builder.errors import ConfigError, DataError, FetchError, HmrError, Problem
from builder.legacy.convert import legacy_error, records_from_legacy
from builder.records import CategoryData, Record

__all__ = ["SOURCE_FILES", "get_optional", "load_legacy", "read_source"]

#: every file a legacy source may hold, in the order they are looked for
SOURCE_FILES: tuple[str, ...] = (*(c.legacy_file for c in LEGACY if c.legacy_file), *TEXT_SETTINGS_FILES, "db.json")


def read_source(src: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The legacy files present at `src` (a directory, or an http(s) base URL), by file name.

    Raises:
        FetchError: a file could not be downloaded, or the URL holds none of them.
        ConfigError: `src` is neither a directory nor an http(s) URL.
        DataError: the directory holds none of the legacy files.
    """
    if src.startswith(("http://", "https://")):
        return _download(src, timeout)
    root = Path(src)
    if not root.is_dir():
        raise ConfigError(f"{src}: not a directory or an http(s) URL")
    found = {name: (root / name).read_bytes() for name in SOURCE_FILES if (root / name).is_file()}
    if not found:
        raise legacy_error(DataError, src, f"holds none of the legacy files ({', '.join(SOURCE_FILES[:3])}, ...)")
    return found


def _download(src: str, timeout: float) -> dict[str, bytes]:
    import httpx

    base = src.rstrip("/") + "/"
    found: dict[str, bytes] = {}
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for name in SOURCE_FILES:
            body = get_optional(client, base + name)
            if body is not None:
                found[name] = body
    if not found:
        raise FetchError(f"{src}: no legacy file found there", src, 404)
    return found


def get_optional(client: Any, url: str) -> bytes | None:
    """The body at `url` (an `httpx.Client` GET), or None for a 404: a source holds what it holds.

    Raises:
        FetchError: the transport failed, or any status but 200 and 404.
    """
    import httpx

    try:
        r = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as e:
        raise FetchError(f"{url}: {type(e).__name__}: {e}", url) from None
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        raise FetchError(f"{url}: HTTP {r.status_code}", url, r.status_code)
    return bytes(r.content)


def load_legacy(legacy_dir: Path) -> tuple[dict[str, CategoryData], list[Problem]]:
    """Records converted in memory from a directory of legacy files (canonical_format = legacy).

    Problems point at the legacy file; the conversion is the one `hmr import-legacy` writes to disk.
    Like `builder.records.load`, problems are collected, never raised.
    """
    cats = {c.name: CategoryData(c) for c in CATEGORIES}
    try:
        files = read_source(str(legacy_dir))
    except HmrError as e:
        return cats, [Problem(str(legacy_dir), "", str(e))]
    problems: list[Problem] = []
    for cd in cats.values():
        cat = cd.category
        path = legacy_dir / (cat.legacy_file or "")
        try:
            records, settings = records_from_legacy(cat, files)
        except HmrError as e:
            problems.append(Problem(str(path), "", str(e)))
            continue
        if settings is None:  # the source has no file of this category
            continue
        cd.settings = settings
        cd.records = {k: Record(cat.name, k, path, data) for k, data in records.items()}
    return cats, problems
