"""One disk memo for everything the package derives and keeps between runs.

What is kept, and by whom:

- parsed, schema-valid records by the digest of their file (`builder.cache.RecordCache`, a table);
- the compiled site files and the other derived build objects (`builder.site`: one slot each);
- the compiled schema validators (`builder.validate`: one slot per category);
- the rendered HTML pages (`builder.site.html`, a table).

Every entry is keyed by `code_fingerprint()`, a digest of the bytes of every module of this package,
of the page templates and of the Python version: editing any of them misses every entry, so there is
no hand-kept list of "the modules that matter" to forget, and stale output cannot be served. A maker
handed to this module must therefore depend only on its inputs and on that code.

Nothing here is more than a speed-up: a miss recomputes, a damaged entry is a miss, and a memo that
cannot be read or written costs time only. Two shapes:

- `memoized(name, inputs, make)`: one slot per name holding the latest value (bytes), so the memo
  never grows with history; `memoized_files` packs a dict of files into one slot.
- `MemoTable(name)`: a persisted dict (str -> JSON value) in one file; the owner keeps what it used.

Location: `$HMR_CACHE_DIR`, else `$XDG_CACHE_HOME/hmr`, else `~/.cache/hmr`; `HMR_NO_CACHE=1` disables it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from builder.fs import atomic_write, walk_files

__all__ = ["MemoTable", "cache_dir", "code_fingerprint", "digest", "fingerprint_of", "memoized", "memoized_files",
           "pack", "unpack"]

#: the package's own code and its page templates (package data: `builder.site.html` reads them through
#: importlib.resources; the memo hashes the same folder, wherever the package is installed)
PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "site" / "templates"
#: the memo's folder inside the cache directory
MEMO_DIR = "memo"


def cache_dir() -> Path | None:
    """The cache directory (see the module docstring), or None when caching is disabled."""
    if os.environ.get("HMR_NO_CACHE"):
        return None
    if os.environ.get("HMR_CACHE_DIR"):
        return Path(os.environ["HMR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hmr"


def digest(content: bytes) -> str:
    """A short content digest (BLAKE2b, 128 bits, hex): the memo's and the record cache's key function."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def fingerprint_of(package_dir: Path, templates_dir: Path) -> str:
    """A digest of every `.py` file under `package_dir`, every file under `templates_dir` (path and
    bytes) and the running Python version."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{sys.implementation.cache_tag}\0{sys.version}\0".encode())
    for label, root, suffix in (("package", package_dir, ".py"), ("templates", templates_dir, "")):
        for rel in sorted(walk_files(root)):
            if "__pycache__" in rel or not rel.endswith(suffix):
                continue  # bytecode is written as the code runs: it must not move the fingerprint
            try:
                content = (root / rel).read_bytes()
            except OSError:
                continue  # removed while we walked
            # length-prefixed, so no two different trees hash the same byte stream
            h.update(f"{label}/{rel}\0{len(content)}\0".encode())
            h.update(content)
    return h.hexdigest()


@cache
def code_fingerprint() -> str:
    """The fingerprint of this package's code and templates, computed once per process (~3 ms)."""
    return fingerprint_of(PACKAGE_DIR, TEMPLATES_DIR)


def _memo_path(name: str, suffix: str) -> Path | None:
    root = cache_dir()
    return None if root is None else root / MEMO_DIR / f"{name}{suffix}"


def _store(path: Path, content: bytes) -> None:
    try:
        atomic_write(path, content)
    except OSError:
        pass  # a memo that cannot be written only costs time


def memoized(name: str, inputs: Iterable[bytes], make: Callable[[], bytes]) -> bytes:
    """`make()`, or the bytes it gave last time for the same `inputs` and the same code.

    One slot per `name`: a new value replaces the previous one.
    """
    path = _memo_path(name, ".bin")
    if path is None:
        return make()
    key = digest(b"\0".join([code_fingerprint().encode(), *(digest(i).encode() for i in inputs)]))
    head = key.encode() + b"\n"
    try:
        with open(path, "rb") as f:
            if f.read(len(head)) == head:
                return f.read()
    except OSError:
        pass
    value = make()
    _store(path, head + value)
    return value


def pack(files: dict[str, bytes]) -> bytes:
    """Many files as one blob: a JSON header line of [path, length] pairs, then the contents."""
    return orjson.dumps([[k, len(v)] for k, v in files.items()]) + b"\n" + b"".join(files.values())


def unpack(blob: bytes) -> dict[str, bytes]:
    """The files `pack` made `blob` of.

    Raises:
        ValueError: the blob is not what `pack` makes (a damaged memo).
    """
    cut = blob.index(b"\n")
    out: dict[str, bytes] = {}
    at = cut + 1
    view = memoryview(blob)
    for path, length in orjson.loads(blob[:cut]):
        out[path] = bytes(view[at: at + length])
        at += length
    if at != len(blob):
        raise ValueError("packed files do not add up")
    return out


def memoized_files(name: str, inputs: Iterable[bytes], make: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
    """`memoized` for a dict of files (path -> bytes)."""
    made: list[dict[str, bytes]] = []

    def build() -> bytes:
        made.append(make())
        return pack(made[0])

    blob = memoized(name, inputs, build)
    if made:
        return made[0]
    try:
        return unpack(blob)
    except (ValueError, TypeError):
        return make()  # a damaged memo only costs time


class MemoTable:
    """A persisted dict (str -> JSON value) in one file, stamped with the code fingerprint.

    The owner reads and adds entries, then `retain`s the ones still live and `save`s; a table written
    by other code (or damaged) reads as empty.
    """

    def __init__(self, name: str) -> None:
        self.path = _memo_path(name, ".json")
        self.entries: dict[str, Any] = {}
        self.dirty = False
        if self.path is not None:
            self.entries = self._read(self.path)

    @staticmethod
    def _head() -> bytes:
        return code_fingerprint().encode() + b"\n"

    def _read(self, path: Path) -> dict[str, Any]:
        head = self._head()
        try:
            raw = path.read_bytes()
        except OSError:
            return {}
        if not raw.startswith(head):
            return {}
        try:
            doc = orjson.loads(memoryview(raw)[len(head):])
        except orjson.JSONDecodeError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def get(self, key: str) -> Any:
        """The value stored under `key`, or None."""
        return self.entries.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def put(self, key: str, value: Any) -> None:
        """Store `value` (a JSON value) under `key`."""
        if key not in self.entries or self.entries[key] != value:
            self.entries[key] = value
            self.dirty = True

    def retain(self, live: Iterable[str]) -> None:
        """Forget every entry whose key is not in `live`."""
        keep = set(live)
        stale = [k for k in self.entries if k not in keep]
        for k in stale:
            del self.entries[k]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        """Write the table if anything changed since it was read."""
        if not self.dirty or self.path is None:
            return
        _store(self.path, self._head() + orjson.dumps(self.entries))
        self.dirty = False
