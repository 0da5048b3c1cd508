"""The on-disk cache of the replica client, shared by every process that uses the same folder.

Layout under `<AIWORKER_CACHE_HOME>/horde_model_reference/replica/` (a sub-folder, so the existing
library's own files beside it are never touched):

    state.json                        what every copy is, where it came from, until when it is fresh
    site/manifest.json[.sig]          the last accepted manifest (and its signature)
    site/v2/<category>.<sha16>.json   v2 bytes exactly as the CDN or a mirror served them, verified
    site/v1/<category>.<sha16>.json   v1 (legacy) bytes from the site, verified
    github/v2/<category>.<sha16>.json v2 converted from the legacy GitHub files
    github/v1/<category>.<sha16>.json legacy files as GitHub served them
    .lock                             the file lock

Site and GitHub copies live in separate files, so a fallback never overwrites better data. Copies
are named by their content, so a new copy never replaces the bytes an older state.json points to:
a reader that does not hold the lock (offline mode) sees a consistent pair of state and copy, and
unreferenced copies are pruned only after the new state.json is in place. Every file is written to
a temporary name and renamed into place (`builder.fs.atomic_write`), so a reader sees the old bytes
or the new ones, never a mix. state.json records the sha256 of every copy and readers check it, so a
file damaged on disk (or cut short by a crash) is detected and ignored, never served. What state.json
holds is typed in `builder.replica.state`. Changes are made under the file
lock; the client holds it for a whole refresh, so processes sharing the cache refresh once between
them instead of once each.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from builder.errors import LockTimeout
from builder.fs import atomic_write, wait_for_flock
from builder.replica.state import State

__all__ = ["STATE_FILE", "DiskCache"]

STATE_FILE = "state.json"
SLOTS = ("site", "github")


class _PosixLock:
    """flock(2) on `<root>/.lock`. The kernel releases it when the holder dies, so a crashed process
    never blocks the others. Used on POSIX instead of the `filelock` package, which does the same but
    costs 20-80 ms of imports: a tenth of a cold `hmr get`. Each instance opens its own descriptor, so
    two clients in one process exclude each other too."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout
        self._fd: int | None = None

    def __enter__(self) -> _PosixLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not wait_for_flock(fd, self.timeout, pause=0.002, max_pause=0.05):
            os.close(fd)
            raise LockTimeout(f"{self.path}: held by another process for over {self.timeout:g}s")
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class _PortableLock:
    """The `filelock` package, where flock(2) is not available (Windows)."""

    def __init__(self, path: Path, timeout: float):
        from filelock import FileLock

        self._lock = FileLock(str(path), timeout=timeout)

    def __enter__(self) -> _PortableLock:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout as e:
            raise LockTimeout(str(e)) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class _NoLock:
    """No lock: the cache lives in memory, so nothing is shared with another process."""

    def __enter__(self) -> _NoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class DiskCache:
    """The folder, or, when it cannot be written (read-only filesystem, a file in the way, a full disk),
    memory: the client keeps working for this process and `error` says why nothing is persisted."""

    def __init__(self, root: Path, lock_timeout: float):
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self.error: str | None = None
        self._memory: dict[str, bytes] = {}

    def _failed(self, e: OSError) -> None:
        if self.error is None:
            self.error = f"cache folder not writable, kept in memory only: {e.strerror or e} ({e.filename or self.root})"

    def lock(self) -> _PosixLock | _PortableLock | _NoLock:
        """The inter-process lock (a context manager).

        Raises:
            LockTimeout: on entering, when another process holds it for over `lock_timeout` seconds.
        """
        if self.error is None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644))
            except OSError as e:
                self._failed(e)
        if self.error is not None:
            return _NoLock()  # nothing is shared on disk: there is nothing to lock
        cls = _PortableLock if sys.platform == "win32" else _PosixLock
        return cls(self.root / ".lock", self.lock_timeout)

    # -- state ----------------------------------------------------------------------------------

    def read_state(self) -> State:
        """The state; an empty one when absent or unreadable (then nothing on disk is trusted)."""
        raw = self._memory.get(STATE_FILE)
        if raw is None:
            try:
                raw = (self.root / STATE_FILE).read_bytes()
            except OSError:
                raw = None
        return State.from_json(raw)

    def write_state(self, state: State) -> None:
        """Replace state.json (call under the lock)."""
        self._write(STATE_FILE, state.to_json())

    # -- copies of documents (`slot` is "site" or "github", `name` e.g. "v2/image_generation") --------

    @staticmethod
    def copy_name(slot: str, name: str, sha256: str) -> str:
        """The file of a copy, relative to the cache folder: named by its content."""
        return f"{slot}/{name}.{sha256[:16]}.json"

    def read_copy(self, slot: str, name: str, sha256: str | None) -> bytes | None:
        """The copy whose digest is `sha256`; None if missing or damaged."""
        if not sha256:
            return None
        return self.read_file(self.copy_name(slot, name, sha256), sha256)

    def write_copy(self, slot: str, name: str, data: bytes) -> str:
        """Store a copy (unless the same bytes are there already); returns its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        rel = self.copy_name(slot, name, sha)
        if self.read_file(rel, sha) is None:  # the same bytes may be there already (another process)
            self._write(rel, data)
        return sha

    def prune(self, state: State) -> None:
        """Delete copies state.json no longer names (call after writing it, under the lock)."""
        keep = {self.copy_name(slot, name, c.sha256) for slot in SLOTS for name, c in state.copies(slot).items()}
        for rel in [r for r in self._memory if r.startswith(("site/v", "github/v")) and r not in keep]:
            del self._memory[rel]
        if self.error is not None:
            return
        for slot in SLOTS:
            for kind in ("v2", "v1"):
                d = self.root / slot / kind
                try:
                    entries = list(os.scandir(d))
                except OSError:
                    continue
                for e in entries:
                    rel = f"{slot}/{kind}/{e.name}"
                    # a name that does not end in .json is another writer's temporary file: never pruned
                    if rel not in keep and e.name.endswith(".json") and not e.name.startswith("."):
                        try:
                            os.unlink(e.path)
                        except OSError:
                            pass

    # -- plain files ----------------------------------------------------------------------------

    def read_file(self, rel: str, sha256: str) -> bytes | None:
        """The file `rel` if its digest is `sha256`; None if missing or damaged."""
        data = self._memory.get(rel)
        if data is None:
            try:
                data = (self.root / rel).read_bytes()
            except OSError:
                return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def write_file(self, rel: str, data: bytes) -> None:
        """Replace the file `rel` (in memory when the folder cannot be written)."""
        self._write(rel, data)

    def _write(self, name: str, data: bytes) -> None:
        if self.error is None:
            try:
                # no fsync: a file cut short by a crash fails its sha256 check on read and is ignored,
                # which costs a re-download, not a wrong answer; fsync would cost every refresh milliseconds
                atomic_write(self.root / name, data)
                return
            except OSError as e:
                self._failed(e)
        self._memory[name] = data
