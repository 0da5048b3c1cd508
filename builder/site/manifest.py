"""The manifest: one document that says what a built site holds.

`api/model_references/v2/manifest.json` lists every object key of the route table with the sha256,
size and content type of its bytes, plus a `generation` counter, the source commit and the build
time. A replica fetches it (conditionally) instead of every category, and verifies what it then
downloads against it.

The manifest is a pure function of the compiled files, the previous manifest and the source, so
builds are deterministic (same inputs, same bytes) and a rebuild with no change writes nothing:
- `generation`: the previous one + 1 when any published byte changed, else the previous one.
- `source_commit`: `git rev-parse HEAD` of the data directory's repository (null outside git),
  carried over when nothing changed (a commit that only edits the README must not make every
  replica download a new manifest).
- `built_at`: SOURCE_DATE_EPOCH when set (reproducible-builds convention, always wins); else the
  previous value when nothing changed; else the source's time: the commit time in git, the newest
  mtime in the data directory outside it (not the wall clock, which would make two builds of the
  same input differ); never earlier than the previous manifest's.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from builder.errors import HmrError, Problem
from builder.routes import routes

MANIFEST_FILE = "api/model_references/v2/manifest.json"
#: a detached signature of the manifest, if one is made: like the manifest, not listed in it
SIGNATURE_FILE = MANIFEST_FILE + ".sig"
MANIFEST_SCHEMA_VERSION = 1
_SELF = (MANIFEST_FILE, SIGNATURE_FILE)
_ISO_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def manifest_entries(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Object key -> {sha256, bytes, content_type} for every key of the route table, sorted by key."""
    digests: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    for r in routes(files):
        if r.file in _SELF:
            continue
        content = files[r.file]
        sha = digests.get(r.file)
        if sha is None:  # aliases and extensionless keys share their file's digest
            sha = digests[r.file] = hashlib.sha256(content).hexdigest()
        entries[r.key] = {"sha256": sha, "bytes": len(content), "content_type": r.content_type}
    return dict(sorted(entries.items()))


def maybe_in_git(path: Path) -> bool:
    """False when `path` is certainly outside any git work tree (no `.git` in it or above it, and no
    GIT_DIR): then asking git, a process start each time (~5-50 ms), can be skipped."""
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return True
    p = os.path.abspath(path)
    while True:
        if os.path.exists(os.path.join(p, ".git")):
            return True
        parent = os.path.dirname(p)
        if parent == p:
            return False
        p = parent


def source_commit(data_dir: Path) -> tuple[str, int] | None:
    """(HEAD, its commit time) of the git repository holding `data_dir`, or None outside git."""
    if not maybe_in_git(data_dir):
        return None
    try:
        r = subprocess.run(["git", "-C", str(data_dir), "show", "-s", "--format=%H %ct", "HEAD"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = r.stdout.split()
    if r.returncode != 0 or len(parts) != 2 or len(parts[0]) not in (40, 64) or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def newest_mtime(root: Path) -> float | None:
    """The newest mtime of any file or folder under `root` (a deletion changes its folder's mtime)."""
    from builder.site.metadata import mtime_times

    return mtime_times(root)[1]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_date_epoch() -> str | None:
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    try:
        return _iso(int(raw))
    except (ValueError, OverflowError, OSError):
        raise HmrError(f"SOURCE_DATE_EPOCH={raw!r} is not a Unix time in seconds") from None


def parse_previous(raw: bytes | None) -> dict[str, Any] | None:
    """The previous manifest if it is usable; None if absent. Raises ValueError if it is malformed."""
    if raw is None:
        return None
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise ValueError("not a manifest object")
    gen = doc.get("generation")
    if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
        raise ValueError("generation is not a positive integer")
    if not (isinstance(doc.get("built_at"), str) and _ISO_RE.fullmatch(doc["built_at"])):
        doc["built_at"] = None  # a time we cannot compare is forgotten, not copied
    return doc


def read_previous(out_dir: Path) -> bytes | None:
    try:
        return (out_dir / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        return None


def make_manifest(files: Mapping[str, bytes], previous: bytes | None, commit: str | None,
                  source_time: Callable[[], float | None] | float | None = None) -> tuple[bytes, list[Problem]]:
    """The manifest's bytes for `files`, given the previous manifest's bytes (None on a first build).

    `source_time` (Unix seconds, or a function giving them, asked only when needed) is the time of
    a new generation when SOURCE_DATE_EPOCH is unset; None means the wall clock.
    """
    warnings: list[Problem] = []
    try:
        prev = parse_previous(previous)
    except ValueError as e:
        # An unreadable manifest cannot tell us its generation: restart the count, but say so loudly.
        warnings.append(Problem(MANIFEST_FILE, "", f"previous manifest unusable ({e}); generation restarts at 1",
                                "warning"))
        prev = None
    entries = manifest_entries(files)
    epoch = _source_date_epoch()
    unchanged = prev is not None and prev["files"] == entries
    if unchanged:
        generation = prev["generation"]
        commit = prev.get("source_commit")
    else:
        generation = prev["generation"] + 1 if prev is not None else 1
    if epoch:
        built_at = epoch
    elif unchanged and prev["built_at"]:
        built_at = prev["built_at"]
    else:
        built_at = generation_time(prev, source_time)
    doc = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "generation": generation,
        "built_at": built_at,
        "source_commit": commit,
        "files": entries,
    }
    return orjson.dumps(doc) + b"\n", warnings


def generation_time(prev: Mapping[str, Any] | None,
                    source_time: Callable[[], float | None] | float | None = None) -> str:
    """`built_at` of a new generation: SOURCE_DATE_EPOCH, else the source's time (None: the wall
    clock), never earlier than the previous manifest's. The change feed dates its entries with it."""
    epoch = _source_date_epoch()
    if epoch:
        return epoch
    when = source_time() if callable(source_time) else source_time
    built_at = _iso(when if when is not None else _now())
    if prev is not None and prev.get("built_at"):
        built_at = max(built_at, prev["built_at"])  # fixed-width UTC strings compare as times
    return built_at


def source_time_of(data_dir: Path, git: tuple[str, int] | None) -> Callable[[], float | None]:
    """The source's time, asked only when needed: the commit time in git, else the newest mtime."""
    if git is not None:
        return lambda: float(git[1])
    return lambda: newest_mtime(data_dir)


def _now() -> float:
    return datetime.now(UTC).timestamp()


_UNSET: Any = object()


def add_manifest(files: dict[str, bytes], data_dir: Path, out_dir: Path,
                 previous: bytes | None = None, git: tuple[str, int] | None = _UNSET,
                 source_time: Callable[[], float | None] | None = None) -> list[Problem]:
    """Add the manifest to `files` in place. `previous` defaults to the manifest already in `out_dir`
    (pass the deployed one to keep the generation monotonic across fresh CI checkouts); `git` is
    `source_commit(data_dir)` and `source_time` `source_time_of(data_dir, git)` when the caller
    already has them."""
    if previous is None:
        previous = read_previous(out_dir)
    if git is _UNSET:
        git = source_commit(data_dir)
    commit = git[0] if git is not None else None
    content, warnings = make_manifest(files, previous, commit, source_time or source_time_of(data_dir, git))
    files[MANIFEST_FILE] = content
    return warnings
