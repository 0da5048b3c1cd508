"""What the build knows about its source, gathered once at the start: `SourceFacts`.

- `commit`, `commit_time`: `HEAD` of the git repository holding the data directory (None outside git);
- `source_date_epoch`: SOURCE_DATE_EPOCH, parsed here and nowhere else (reproducible-builds convention);
- `category_times`: per category, the newest and oldest time of its data (`builder.site.metadata`
  publishes them; its docstring states the rules): the commit times of `git log` in git, else
  SOURCE_DATE_EPOCH when set, else the file mtimes;
- `source_time()`: the source's time for a new manifest generation: the commit time in git, else the
  newest mtime under the data directory (the category walk finds it; walked only when asked otherwise).

The stages read these facts; none of them asks git, the clock or the environment itself. Git costs a
process start per question (~5-50 ms), so a folder certainly outside any work tree never asks.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from builder.categories import CATEGORIES
from builder.errors import ConfigError

__all__ = ["CategoryTimes", "SourceFacts", "category_times", "git_times", "github_origin", "iso_time",
           "maybe_in_git", "mtime_times", "newest_mtime", "parse_source_date_epoch", "source_commit",
           "source_facts"]


class CategoryTimes(NamedTuple):
    """A category's newest and oldest data time (Unix seconds; None when unknown)."""

    last_updated: int | None
    initialization_time: int | None


def iso_time(ts: float) -> str:
    """Unix seconds as the manifest writes times: `YYYY-MM-DDTHH:MM:SSZ` (UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_source_date_epoch(raw: str | None) -> int | None:
    """SOURCE_DATE_EPOCH as Unix seconds; None when unset or empty.

    Raises:
        ConfigError: the value is not a Unix time in seconds (one that a time can be made of).
    """
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
        iso_time(value)  # a time too far out to write is as unusable as a word
    except (ValueError, OverflowError, OSError):
        raise ConfigError(f"SOURCE_DATE_EPOCH={raw!r} is not a Unix time in seconds") from None
    return value


def maybe_in_git(path: Path) -> bool:
    """False when `path` is certainly outside any git work tree (no `.git` in it or above it, and no
    GIT_DIR): then asking git can be skipped."""
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


def _git(data_dir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(["git", "-C", str(data_dir), *args], capture_output=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def source_commit(data_dir: Path) -> tuple[str, int] | None:
    """(HEAD, its commit time) of the git repository holding `data_dir`, or None outside git."""
    if not maybe_in_git(data_dir):
        return None
    r = _git(data_dir, "show", "-s", "--format=%H %ct", "HEAD")
    if r is None:
        return None
    parts = r.stdout.decode("utf-8", "replace").split()
    if r.returncode != 0 or len(parts) != 2 or len(parts[0]) not in (40, 64) or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def git_times(data_dir: Path) -> dict[str, CategoryTimes] | None:
    """Per category folder, the newest and oldest commit time touching it; None outside git (or untracked)."""
    if not maybe_in_git(data_dir):
        return None
    r = _git(data_dir, "log", "--format=%x01%ct", "--name-only", "--no-renames", "--relative", "-z", "--", ".",
             timeout=60)
    if r is None or r.returncode != 0:
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


def newest_mtime(root: Path) -> float | None:
    """The newest mtime of any file or folder under `root` (a deletion changes its folder's mtime)."""
    return mtime_times(root)[1]


def category_times(data_dir: Path, epoch: int | None) -> tuple[dict[str, CategoryTimes], float | None]:
    """Every category's (last_updated, initialization_time), per `builder.site.metadata`'s rules, and
    the newest mtime of anything in the data directory when the category folders were walked for it
    (None when they were not: git or SOURCE_DATE_EPOCH answered)."""
    found = git_times(data_dir)
    seen: float | None = None
    if found is None:
        found = {}
        for c in CATEGORIES:
            folder = data_dir / c.name
            if not folder.is_dir():
                continue
            if epoch is not None:
                found[c.name] = CategoryTimes(epoch, epoch)
            else:
                found[c.name], m = mtime_times(folder)
                if m is not None and (seen is None or m > seen):
                    seen = m
        if epoch is None:
            try:  # the data folder itself and what lies directly in it
                for p in (data_dir, *data_dir.iterdir()):
                    m = p.stat().st_mtime
                    seen = m if seen is None or m > seen else seen
            except OSError:
                pass
    known = [t.initialization_time for t in found.values() if t.initialization_time is not None]
    floor = min(known) if known else 0
    out: dict[str, CategoryTimes] = {}
    for c in CATEGORIES:
        t = found.get(c.name)
        last = t.last_updated if t is not None and t.last_updated is not None else floor
        init = t.initialization_time if t is not None and t.initialization_time is not None else last
        out[c.name] = CategoryTimes(last, min(init, last))
    return out, seen


def github_origin(data_dir: Path) -> tuple[str, str] | None:
    """(https URL of the GitHub repository, path of `data_dir` in it) from git, or None."""
    import re

    if not maybe_in_git(data_dir):
        return None
    prefix = _git(data_dir, "rev-parse", "--show-prefix")
    if prefix is None or prefix.returncode != 0:
        return None
    origin = _git(data_dir, "config", "--get", "remote.origin.url")
    if origin is None:
        return None
    m = re.fullmatch(r"(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)([\w.-]+/[\w.-]+?)(?:\.git)?/?",
                     origin.stdout.decode("utf-8", "replace").strip())
    if origin.returncode != 0 or m is None:
        return None
    return f"https://github.com/{m.group(1)}", prefix.stdout.decode("utf-8", "replace").strip().strip("/")


@dataclass(frozen=True)
class SourceFacts:
    """The facts about the source that the stages need, read once (see the module docstring)."""

    data_dir: Path
    commit: str | None
    commit_time: int | None
    source_date_epoch: int | None
    category_times: Mapping[str, CategoryTimes]
    #: the newest mtime the category walk saw (None when it did not walk)
    seen_mtime: float | None = None

    @cached_property
    def newest_mtime(self) -> float | None:
        """The newest mtime under the data directory: what the category walk saw, else a walk now."""
        return self.seen_mtime if self.seen_mtime is not None else newest_mtime(self.data_dir)

    def source_time(self) -> float | None:
        """The source's time: the commit time in git, else the newest mtime (None: nothing to date)."""
        if self.commit is not None and self.commit_time is not None:
            return float(self.commit_time)
        return self.newest_mtime


def source_facts(data_dir: Path) -> SourceFacts:
    """The facts of the data directory `data_dir` (git, SOURCE_DATE_EPOCH, times).

    Raises:
        ConfigError: SOURCE_DATE_EPOCH is set to something that is not a Unix time.
    """
    epoch = parse_source_date_epoch(os.environ.get("SOURCE_DATE_EPOCH"))
    times, seen = category_times(data_dir, epoch)
    git = source_commit(data_dir)
    return SourceFacts(data_dir, git[0] if git else None, git[1] if git else None, epoch, times, seen)
