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
a temporary name and renamed into place, so a reader sees the old bytes or the new ones, never a
mix. state.json records the sha256 of every copy and readers check it, so a file damaged on disk
(or cut short by a crash) is detected and ignored, never served. Changes are made under the file
lock; the client holds it for a whole refresh, so processes sharing the cache refresh once between
them instead of once each.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from builder.errors import LockTimeout

STATE_FILE = "state.json"
STATE_VERSION = 1




class _PosixLock:
    """flock(2) on `<root>/.lock`. The kernel releases it when the holder dies, so a crashed process
    never blocks the others. Used on POSIX instead of the `filelock` package, which does the same but
    costs 20-80 ms of imports: a tenth of a cold `hmr get`. Each instance opens its own descriptor, so
    two clients in one process exclude each other too."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout = path, timeout
        self._fd: int | None = None

    def __enter__(self) -> _PosixLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeout(f"{self.path}: held by another process for over {self.timeout:g}s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
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
        """The inter-process lock (a context manager); raises LockTimeout after `lock_timeout`."""
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

    def read_state(self) -> dict[str, Any]:
        """The state document; an empty one when absent or unreadable (then nothing on disk is trusted)."""
        try:
            raw = self._memory.get(STATE_FILE) or (self.root / STATE_FILE).read_bytes()
            doc = orjson.loads(raw)
        except (OSError, orjson.JSONDecodeError):
            return new_state()
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            return new_state()
        for section in ("sources", "site", "github", "served"):
            if not isinstance(doc.get(section), dict):
                doc[section] = {}
        return doc

    def write_state(self, state: dict[str, Any]) -> None:
        self._write(STATE_FILE, orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    # -- copies of documents (`slot` is "site" or "github", `name` e.g. "v2/image_generation") --------

    @staticmethod
    def copy_name(slot: str, name: str, sha256: str) -> str:
        return f"{slot}/{name}.{sha256[:16]}.json"

    def read_copy(self, slot: str, name: str, sha256: str | None) -> bytes | None:
        """The copy whose digest is `sha256`; None if missing or damaged."""
        if not sha256:
            return None
        return self.read_file(self.copy_name(slot, name, sha256), sha256)

    def write_copy(self, slot: str, name: str, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        rel = self.copy_name(slot, name, sha)
        if self.read_file(rel, sha) is None:  # the same bytes may be there already (another process)
            self._write(rel, data)
        return sha

    def prune(self, state: dict[str, Any]) -> None:
        """Delete copies state.json no longer names (call after writing it, under the lock)."""
        keep = {self.copy_name(slot, name, meta["sha256"])
                for slot in ("site", "github") for name, meta in state[slot].items()
                if isinstance(meta, dict) and isinstance(meta.get("sha256"), str)}
        for rel in [r for r in self._memory if r.startswith(("site/v", "github/v")) and r not in keep]:
            del self._memory[rel]
        if self.error is not None:
            return
        for slot in ("site", "github"):
            for kind in ("v2", "v1"):
                d = self.root / slot / kind
                try:
                    entries = list(os.scandir(d))
                except OSError:
                    continue
                for e in entries:
                    rel = f"{slot}/{kind}/{e.name}"
                    if rel not in keep and e.name.endswith(".json") and not e.name.startswith("."):
                        try:
                            os.unlink(e.path)
                        except OSError:
                            pass

    # -- plain files ----------------------------------------------------------------------------

    def read_file(self, rel: str, sha256: str) -> bytes | None:
        data = self._memory.get(rel)
        if data is None:
            try:
                data = (self.root / rel).read_bytes()
            except OSError:
                return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def write_file(self, rel: str, data: bytes) -> None:
        self._write(rel, data)

    def _write(self, name: str, data: bytes) -> None:
        if self.error is None:
            try:
                self._write_file(name, data)
                return
            except OSError as e:
                self._failed(e)
        self._memory[name] = data

    def _write_file(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # a unique name beside the target (same filesystem, so the rename is atomic); O_EXCL: never
        # another process's temp file. (Not tempfile.mkstemp: its import costs a cold start ~10 ms.)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # no fsync: a file cut short by a crash fails its sha256 check on read and is ignored,
            # which costs a re-download, not a wrong answer; fsync would cost every refresh milliseconds
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def new_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "generation": None, "manifest": None, "sources": {}, "site": {},
            "github": {}, "served": {}, "last_refresh": None}
