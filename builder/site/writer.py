"""Atomic, minimal writes of a whole site tree.

A build that changes nothing writes nothing (mtimes, ETags and CDN caches stay valid). A build that
changes something assembles a complete new tree beside the old one, hard-linking every unchanged file
(so it keeps its inode and mtime), in a generation folder `.site.gen-<time>-<pid>`; `site` is a
symbolic link to the live one, replaced by one rename (`os.replace` of a new link). At every instant
`site` is a complete tree, old or new, even if the build is killed; what a killed build left
(`.site.gen-*` never linked, `.site.link-*`, and `.site.new-*`/`.site.old-*` of the older two-rename
layout) is removed by the next write. The live generation and the one before it are kept.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.fs import walk_files

__all__ = ["WORKERS", "WriteStats", "clean_stale", "write_tree"]


@dataclass
class WriteStats:
    """How many files a write created or replaced, left alone, and removed."""

    written: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        """Whether the write touched the tree at all."""
        return bool(self.written or self.removed)


def _same(path: str, content: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != len(content):
                return False
            return f.read() == content
    except OSError:
        return False


#: Creating a file costs far more than writing it (an inode and a directory entry: ~0.2 ms on the VMs
#: this runs on, more than everything else a small page costs), and the kernel work for files in
#: different folders runs in parallel: a few threads that spend their time in system calls (holding
#: no GIL) roughly halve the time to lay out a site of thousands of files.
WORKERS = 4
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _parallel(fn: Callable[[list], None], items: list, workers: int = WORKERS) -> None:
    if len(items) < 64 or workers < 2:
        fn(items)
        return
    # interleaved slices spread each folder's files (and so its directory lock) over the workers
    errors: list[BaseException] = []

    def run(sl: list) -> None:
        try:
            fn(sl)
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(items[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _lay_out(new: str, out: str, files: dict[str, bytes], changed: set[str]) -> None:
    """Create the tree `new` holding `files`: changed ones written, the others hard-linked from `out`."""
    dirs = {os.path.dirname(rel) for rel in files}
    needed: set[str] = set()
    for d in dirs:
        while d and d not in needed:
            needed.add(d)
            d = os.path.dirname(d)
    os.mkdir(new)
    by_depth: dict[int, list[str]] = {}
    for d in needed:
        by_depth.setdefault(d.count("/"), []).append(d)

    def mkdirs(ds: list[str]) -> None:
        for d in ds:
            os.mkdir(os.path.join(new, d))

    for depth in sorted(by_depth):  # parents before children
        _parallel(mkdirs, sorted(by_depth[depth]))

    def place(rels: list[str]) -> None:
        for rel in rels:
            target = os.path.join(new, rel)
            if rel not in changed:
                try:
                    os.link(os.path.join(out, rel), target)
                    continue
                except OSError:
                    pass  # another filesystem, or links refused: copy instead
            fd = os.open(target, _CREATE, 0o644)
            try:
                view = memoryview(files[rel])
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)

    _parallel(place, list(files))


def write_tree(out_dir: Path, files: dict[str, bytes]) -> WriteStats:
    """Make `out_dir` hold exactly `files` (relative path -> bytes), switching to the new tree in one
    rename (see the module docstring)."""
    stats = WriteStats()
    out = str(out_dir)
    exists = out_dir.is_dir()
    old = walk_files(out_dir, symlinks=True) if exists else set()  # every entry it must replace
    changed = {rel for rel, content in files.items()
               if rel not in old or not _same(os.path.join(out, rel), content)}
    removed = old - set(files)
    stats.written, stats.removed = len(changed), len(removed)
    stats.unchanged = len(files) - len(changed)
    parent = out_dir.parent
    if not changed and not removed and exists:
        clean_stale(out_dir)
        return stats
    parent.mkdir(parents=True, exist_ok=True)
    tag = f"{time.time_ns():020d}-{os.getpid()}"
    gen = parent / f".{out_dir.name}.gen-{tag}"
    link = parent / f".{out_dir.name}.link-{tag}"
    try:
        _lay_out(str(gen), out, files, changed)
        os.symlink(gen.name, link)  # relative: the pair can move together
        if out_dir.is_dir() and not out_dir.is_symlink():
            # a site written before generation folders: moved aside once (the only two-step swap)
            os.rename(out_dir, parent / f".{out_dir.name}.old-{tag}")
        os.replace(link, out_dir)  # the one step: readers see the old tree or the new one
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        _unlink(link)
        raise
    clean_stale(out_dir)
    return stats


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def clean_stale(out_dir: Path) -> None:
    """Remove what killed or finished builds left beside `out_dir`: temporary links, trees of the
    older layout, and every generation folder but the live one and the one before it (a reader
    that resolved the link just before a swap still finds its files)."""
    parent = out_dir.parent
    prefix = f".{out_dir.name}."
    try:
        live = os.readlink(out_dir) if out_dir.is_symlink() else None
        names = sorted(os.listdir(parent))
    except OSError:
        return
    gens = [n for n in names if n.startswith(prefix + "gen-")]
    keep = {live} if live else set()
    if live in gens:
        older = [n for n in gens if n < live]
        keep.update(older[-1:])
    for n in names:
        if not n.startswith(prefix):
            continue
        rest = n[len(prefix):]
        if rest.startswith("link-"):
            _unlink(parent / n)
        elif rest.startswith(("new-", "old-")) or (rest.startswith("gen-") and n not in keep):
            shutil.rmtree(parent / n, ignore_errors=True)
