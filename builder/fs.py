"""The filesystem operations the package shares: atomic file writes, tree walks, pruning empty folders.

Every writer of a file that another process may read at the same time (the record cache, the memo,
the replica's cache, data files edited by `hmr model`, a deployed `file://` target) goes through
`atomic_write`, so a reader sees the old bytes or the new ones, never a torn file. Stdlib only, and
cheap to import: the replica client's cold start imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write", "prune_empty_dirs", "wait_for_flock", "walk_files", "write_changed"]

_EXCL = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, durable: bool = False, mode: int = 0o644,
                 make_parents: bool = True) -> None:
    """Replace `path` with `data` in one rename.

    The temporary file sits beside `path` (same filesystem, so the rename is atomic) under a name no
    other writer can pick, and is removed if anything fails. `durable` also fsyncs the file before
    the rename and the folder after it, for writes that must survive a power cut (published state).
    Not `tempfile.mkstemp`: its import alone costs the replica's cold start about 10 ms.
    """
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    if make_parents:
        os.makedirs(folder, exist_ok=True)
    tmp = f"{target}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(tmp, _EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def walk_files(root: str | os.PathLike[str], *, symlinks: bool = False) -> set[str]:
    """Relative paths (with "/") of every regular file under `root`; symlinks are not followed and
    a missing `root` is an empty tree. `symlinks=True` lists the symbolic links that are not folders
    too (for a writer that must replace every entry of a tree)."""
    base = os.fspath(root)
    out: set[str] = set()
    for dirpath, _dirs, names in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for n in names:
            if symlinks or not os.path.islink(os.path.join(dirpath, n)):
                out.add(prefix + n)
    return out


def prune_empty_dirs(root: str | os.PathLike[str], start: str | os.PathLike[str]) -> None:
    """Remove `start` and its parents while they are empty, stopping at `root` (never removed)."""
    top = Path(root).resolve()
    here = Path(start).resolve()
    while here != top and top in here.parents:
        try:
            here.rmdir()
        except OSError:  # not empty (or already gone): stop
            return
        here = here.parent


def write_changed(writes: dict[Path, str]) -> tuple[int, int]:
    """Write each (path -> text) whose file does not already hold exactly that text, atomically;
    (files written, files left as they were). Importers use it so that re-importing changes nothing."""
    written = unchanged = 0
    for path, text in writes.items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            unchanged += 1
            continue
        atomic_write(path, text.encode("utf-8"))
        written += 1
    return written, unchanged


def wait_for_flock(fd: int, timeout: float, pause: float = 0.01, max_pause: float = 0.2) -> bool:
    """Take an exclusive flock(2) on `fd`, waiting up to `timeout` seconds (pauses doubling from `pause`
    to `max_pause`); False if another process held it all that time. POSIX only."""
    import fcntl
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, max_pause)
