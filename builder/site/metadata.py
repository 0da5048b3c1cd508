"""The old API's `metadata/...` endpoints as static objects, under v1 and v2.

- `metadata/last_updated` -> `{"last_updated": int}`, the newest category time;
- `metadata/metadata` -> `{category: CategoryMetadata}`;
- `metadata/{category}` -> `CategoryMetadata`;
- `metadata/{category}/last_updated` -> `{"category": ..., "last_updated": int}`.

A static site has no operation log, so `CategoryMetadata` (the existing library's model, whose time
fields are required integers) is derived: `total_models` counts the category's records, the counters
are 0, `backend_type` is "StaticSite", and the times come from the source, so the same input always
gives the same bytes:
- in git: `last_updated` is the time of the newest commit that touched `data/<category>`,
  `initialization_time` of the oldest (one `git log` walk for all categories; uncommitted edits do not
  count until they are committed);
- outside git: SOURCE_DATE_EPOCH when set, else the newest (and oldest) mtime in the category folder;
- a category with no data and no history gets the data set's earliest time (it "exists" since the
  data set does), or 0 for an empty data set, rather than moving whenever another category changes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from builder.categories import CATEGORIES
from builder.records import CategoryData

V1 = "api/model_references/v1"
V2 = "api/model_references/v2"
BACKEND_TYPE = "StaticSite"
METADATA_SCHEMA_VERSION = "1.0.0"


class CategoryTimes(NamedTuple):
    last_updated: int | None
    initialization_time: int | None


def git_times(data_dir: Path) -> dict[str, CategoryTimes] | None:
    """Per category folder, the newest and oldest commit time touching it; None outside git (or untracked)."""
    from builder.site.manifest import maybe_in_git

    if not maybe_in_git(data_dir):
        return None
    try:
        r = subprocess.run(
            ["git", "-C", str(data_dir), "log", "--format=%x01%ct", "--name-only", "--no-renames", "--relative",
             "-z", "--", "."],
            capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None  # not a repository, or no commit yet
    newest: dict[str, int] = {}
    oldest: dict[str, int] = {}
    when = 0
    for token in r.stdout.split(b"\x00"):
        for part in token.split(b"\n"):
            if part.startswith(b"\x01"):
                when = int(part[1:])
                continue
            if not part or b"/" not in part:
                continue
            cat = part.split(b"/", 1)[0].decode("utf-8", "replace")
            if when > newest.get(cat, -1):
                newest[cat] = when
            if cat not in oldest or when < oldest[cat]:
                oldest[cat] = when
    if not newest:
        return None  # a repository that does not track the data: judge it like a plain folder
    return {c: CategoryTimes(newest[c], oldest[c]) for c in newest}


def mtime_times(folder: Path) -> tuple[CategoryTimes, float | None]:
    """(newest and oldest file mtime, newest mtime of any file or folder) under `folder`: a deletion
    shows only in its folder's time, which the manifest counts and the category's files cannot."""
    newest: float | None = None
    oldest: float | None = None
    newest_any: float | None = None
    stack = [str(folder)]
    while stack:
        top = stack.pop()
        try:
            m = os.stat(top).st_mtime
            entries = list(os.scandir(top))
        except OSError:
            continue
        newest_any = m if newest_any is None or m > newest_any else newest_any
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
                continue
            try:
                m = e.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            newest = m if newest is None or m > newest else newest
            oldest = m if oldest is None or m < oldest else oldest
    if newest is not None and (newest_any is None or newest > newest_any):
        newest_any = newest
    return CategoryTimes(None if newest is None else int(newest), None if oldest is None else int(oldest)), newest_any


def category_times(data_dir: Path, cats: Mapping[str, CategoryData],
                   newest_seen: list[float] | None = None) -> dict[str, CategoryTimes]:
    """Every category's (last_updated, initialization_time), per the rules in the module docstring.

    When the category folders' mtimes are walked, the newest mtime of anything under `data_dir` is
    appended to `newest_seen` (the manifest's source time outside git: one walk serves both)."""
    found = git_times(data_dir)
    if found is None:
        found = {}
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        newest_any: float | None = None
        for c in CATEGORIES:
            folder = data_dir / c.name
            if not folder.is_dir():
                continue
            if epoch:
                # manifest.py rejects a malformed value with a clear error; here it only must not crash first
                t = int(epoch) if epoch.isdigit() else 0
                found[c.name] = CategoryTimes(t, t)
            else:
                found[c.name], m = mtime_times(folder)
                if m is not None and (newest_any is None or m > newest_any):
                    newest_any = m
        if newest_seen is not None and not epoch:
            try:  # the data folder itself and what lies directly in it
                for p in (data_dir, *data_dir.iterdir()):
                    m = p.stat().st_mtime
                    newest_any = m if newest_any is None or m > newest_any else newest_any
            except OSError:
                pass
            if newest_any is not None:
                newest_seen.append(newest_any)
    known = [t.initialization_time for t in found.values() if t.initialization_time is not None]
    floor = min(known) if known else 0
    out: dict[str, CategoryTimes] = {}
    for c in CATEGORIES:
        t = found.get(c.name)
        last = t.last_updated if t is not None and t.last_updated is not None else floor
        init = t.initialization_time if t is not None and t.initialization_time is not None else last
        out[c.name] = CategoryTimes(last, min(init, last))
    return out


def category_metadata(name: str, times: CategoryTimes, total_models: int) -> dict[str, Any]:
    """`CategoryMetadata` in the existing library's field order."""
    return {
        "category": name,
        "last_updated": times.last_updated,
        "last_operation_type": None,
        "last_operation_model": None,
        "total_creates": 0,
        "total_updates": 0,
        "total_deletes": 0,
        "total_models": total_models,
        "initialization_time": times.initialization_time,
        "last_successful_operation": times.last_updated,
        "error_count": 0,
        "metadata_schema_version": METADATA_SCHEMA_VERSION,
        "backend_type": BACKEND_TYPE,
    }


def metadata_files(cats: Mapping[str, CategoryData], times: Mapping[str, CategoryTimes]) -> dict[str, bytes]:
    """Relative path -> bytes of the metadata objects of v1 and v2 (the same values under both)."""
    docs = {c.name: category_metadata(c.name, times[c.name], len(cats[c.name].records)) for c in CATEGORIES}
    newest = max((d["last_updated"] for d in docs.values()), default=None)
    out: dict[str, bytes] = {}
    for prefix in (V1, V2):
        out[f"{prefix}/metadata/last_updated.json"] = orjson.dumps({"last_updated": newest})
        out[f"{prefix}/metadata/metadata.json"] = orjson.dumps(docs)
        for name, doc in docs.items():
            out[f"{prefix}/metadata/{name}.json"] = orjson.dumps(doc)
            out[f"{prefix}/metadata/{name}/last_updated.json"] = orjson.dumps(
                {"category": name, "last_updated": doc["last_updated"]})
    return out
