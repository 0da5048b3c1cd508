"""A content-addressed cache of parsed, schema-valid records, so rebuilds skip YAML parsing and schema checks.

Entries are keyed by a hash of a file's bytes and stamped with a fingerprint of the schemas and of this
package's version: an edited file, a changed schema or a new release simply misses. Only records that
passed the schema are stored, so a hit never hides an error; semantic checks still run every time.
Location: `$HMR_CACHE_DIR`, else `$XDG_CACHE_HOME/hmr`, else `~/.cache/hmr`; `HMR_NO_CACHE=1` disables it.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

import orjson


def cache_dir() -> Path | None:
    if os.environ.get("HMR_NO_CACHE"):
        return None
    if os.environ.get("HMR_CACHE_DIR"):
        return Path(os.environ["HMR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hmr"


def digest(content: bytes) -> str:
    return hashlib.blake2b(content, digest_size=16).hexdigest()


@cache
def fingerprint() -> str:
    from builder import __version__
    from builder.schemas import all_schemas

    return digest(orjson.dumps([__version__, all_schemas()], option=orjson.OPT_SORT_KEYS))[:16]


class RecordCache:
    """digest -> parsed record, for one data directory."""

    def __init__(self, data_dir: Path):
        self.entries: dict[str, Any] = {}
        self.dirty = False
        root = cache_dir()
        self.path = None
        if root is None:
            return
        key = digest(str(data_dir.resolve()).encode())[:16]
        self.path = root / f"records-{fingerprint()}-{key}.json"
        try:
            self.entries = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            self.entries = {}

    def get(self, d: str) -> Any:
        return self.entries.get(d)

    def put(self, d: str, value: Any) -> None:
        if d not in self.entries:
            try:
                orjson.dumps(value)  # values YAML can hold but JSON cannot are simply not cached
            except TypeError:
                return
            self.entries[d] = value
            self.dirty = True

    def retain(self, live: set[str]) -> None:
        stale = set(self.entries) - live
        if stale:
            for d in stale:
                del self.entries[d]
            self.dirty = True

    def save(self) -> None:
        if not self.dirty or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_bytes(orjson.dumps(self.entries))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time
