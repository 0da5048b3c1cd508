"""A content-addressed cache of parsed, schema-valid records, so rebuilds skip YAML parsing and schema checks.

Entries are keyed by a hash of a file's bytes and live in a table of the disk memo (`builder.memo`),
stamped with the fingerprint of this package's code: an edited file, a changed schema or any other
code change simply misses. Only records that passed the schema are stored, so a hit never hides an
error; semantic checks still run every time. Location and `HMR_NO_CACHE`: see `builder.memo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from builder.memo import MemoTable, cache_dir, code_fingerprint, digest

__all__ = ["RecordCache", "cache_dir", "digest", "fingerprint"]


def fingerprint() -> str:
    """The stamp of every cache entry: the code fingerprint (`builder.memo.code_fingerprint`), shortened."""
    return code_fingerprint()[:16]


class RecordCache:
    """digest -> parsed record, for one data directory."""

    def __init__(self, data_dir: Path):
        self.table = MemoTable(f"records-{digest(str(data_dir.resolve()).encode())[:16]}")

    def get(self, d: str) -> Any:
        """The record parsed from a file whose digest is `d`, or None."""
        return self.table.get(d)

    def put(self, d: str, value: Any) -> None:
        """Remember `value` as the record of the file whose digest is `d` (once; values JSON cannot hold
        are not cached)."""
        if d not in self.table:
            try:
                orjson.dumps(value)  # values YAML can hold but JSON cannot are simply not cached
            except TypeError:
                return
            self.table.put(d, value)

    def retain(self, live: set[str]) -> None:
        """Forget the records of files that are gone (digests not in `live`)."""
        self.table.retain(live)

    def save(self) -> None:
        """Write the cache if it changed (an unwritable cache only costs time)."""
        self.table.save()
