"""An edit of `data/` as a plan of file operations, tried on a scratch copy before it is applied.

`trial` copies the categories a plan touches (hard links where possible, so it is cheap), applies the
plan there, loads and validates both sides through `builder.load` exactly as `hmr build` would, and
says which problems the plan adds. `apply_plan` then makes the same writes in `data/`, atomically
per file. Deciding whether to apply is the caller's (`builder.contrib.crud`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from builder.cache import RecordCache
from builder.errors import Problem
from builder.fs import atomic_write, prune_empty_dirs
from builder.load import load_checked, remember
from builder.records import CategoryData
from builder.validate import strict_legacy

__all__ = ["Plan", "Trial", "apply_plan", "trial"]


@dataclass
class Plan:
    """The file operations of one edit, by path relative to the data directory (POSIX)."""

    #: path -> new text
    writes: dict[str, str] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    def categories(self) -> list[str]:
        """The category folders the plan writes or deletes in, sorted."""
        return sorted({rel.split("/", 1)[0] for rel in [*self.writes, *self.deletes]})


@dataclass
class Trial:
    """The touched categories before and after a plan, and the problems the plan adds (sorted)."""

    before: dict[str, CategoryData]
    after: dict[str, CategoryData]
    new_problems: list[Problem]


def _clone(src: Path, dst: Path) -> None:
    """A copy of a folder: hard links (cheap) where the file system allows, else copies.

    Writes in the copy replace files (`atomic_write` renames), so they never write through a link.
    """
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        target = dst / here.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for d in list(dirnames):
            if (here / d).is_symlink():
                os.symlink(os.readlink(here / d), target / d)
                dirnames.remove(d)
        for name in filenames:
            s = here / name
            if s.is_symlink():
                os.symlink(os.readlink(s), target / name)
                continue
            try:
                os.link(s, target / name)
            except OSError:
                shutil.copy2(s, target / name)


def apply_plan(root: Path, plan: Plan) -> None:
    """Make the plan's writes and deletes under `root` (each write atomic)."""
    for rel, text in plan.writes.items():
        atomic_write(root / rel, text.encode("utf-8"))
    for rel in plan.deletes:
        p = root / rel
        p.unlink()
        # a key with "/" lives in sub-folders; drop the ones the removal emptied (never the category)
        prune_empty_dirs(root / rel.split("/", 1)[0], p.parent)


def _problem_key(root: Path, p: Problem) -> tuple[str, str, str, str]:
    try:
        rel = Path(p.file).relative_to(root).as_posix()
    except ValueError:
        rel = p.file
    return rel, p.pointer, p.message, p.severity


def _moved(data_dir: Path, scratch: Path, p: Problem) -> Problem:
    rel = _problem_key(scratch, p)[0]
    return Problem(str(data_dir / rel), p.pointer, p.message, p.severity)


def trial(data_dir: Path, plan: Plan) -> Trial:
    """Load + validate the data set as it is and as it would be after `plan`; what the plan adds.

    Validation is per category (every check of `builder.validate` looks within one category), so
    only the categories the plan touches are copied, loaded and validated: an edit of a small
    category does not pay for reading the 700 text models.
    """
    touched = plan.categories()
    cache = RecordCache(data_dir)  # keyed by content, so the scratch copy hits it for unchanged files
    with strict_legacy():  # an edit may not add what only imported legacy data is forgiven
        before, problems = load_checked(data_dir, cache, touched, legacy=False)
    remember(cache, before, retain=False)  # the cache also serves the categories not loaded here
    known = {_problem_key(data_dir, p) for p in problems}
    with tempfile.TemporaryDirectory(prefix="hmr-edit-") as tmp:
        scratch = Path(tmp) / "data"
        scratch.mkdir()
        for name in touched:
            if (data_dir / name).is_dir():
                _clone(data_dir / name, scratch / name)
        apply_plan(scratch, plan)
        # the scratch copy is v2 whatever settings a pyproject.toml above the temporary folder holds
        with strict_legacy():
            after, after_problems = load_checked(scratch, cache, touched, legacy=False)
        new = sorted(_moved(data_dir, scratch, p) for p in after_problems
                     if _problem_key(scratch, p) not in known)
    return Trial(before, after, new)
