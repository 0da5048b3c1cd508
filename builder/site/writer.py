"""Atomic, minimal writes of a whole site tree.

A build that changes nothing writes nothing (mtimes, ETags and CDN caches stay valid). A build that
changes something assembles a complete new tree beside the old one, hard-linking every unchanged file
(so it keeps its inode and mtime), then swaps the trees with two renames: readers see the old tree or
the new one, never a half-written mix, and a failure before the swap leaves the old tree untouched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class WriteStats:
    written: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def _existing_files(root: Path) -> set[str]:
    out = set()
    for dirpath, _dirs, names in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for n in names:
            out.add(n if rel == "." else f"{rel}/{n}".replace(os.sep, "/"))
    return out


def _same(path: Path, content: bytes) -> bool:
    try:
        if path.stat().st_size != len(content):
            return False
        return path.read_bytes() == content
    except OSError:
        return False


def write_tree(out_dir: Path, files: dict[str, bytes]) -> WriteStats:
    """Make `out_dir` hold exactly `files` (relative path -> bytes)."""
    stats = WriteStats()
    old = _existing_files(out_dir) if out_dir.is_dir() else set()
    changed = {rel for rel, content in files.items() if rel not in old or not _same(out_dir / rel, content)}
    removed = old - set(files)
    stats.written, stats.removed = len(changed), len(removed)
    stats.unchanged = len(files) - len(changed)
    if not changed and not removed and out_dir.is_dir():
        return stats
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    new = parent / f".{out_dir.name}.new-{os.getpid()}"
    shutil.rmtree(new, ignore_errors=True)
    try:
        made: set[str] = set()
        for rel, content in files.items():
            target = new / rel
            d = os.path.dirname(rel)
            if d not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(d)
            if rel not in changed:
                try:
                    os.link(out_dir / rel, target)
                    continue
                except OSError:
                    pass  # another filesystem, or links refused: copy instead
            target.write_bytes(content)
        if out_dir.exists():
            retired = parent / f".{out_dir.name}.old-{os.getpid()}"
            shutil.rmtree(retired, ignore_errors=True)
            os.rename(out_dir, retired)
            os.rename(new, out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(new, out_dir)
    finally:
        shutil.rmtree(new, ignore_errors=True)
    return stats
