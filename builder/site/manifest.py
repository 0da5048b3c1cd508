"""The manifest: one document that says what a built site holds.

`MANIFEST_FILE` (`v2/manifest.json`, `builder.routes`) lists every object key of the route table
with the sha256, size and content type of its bytes, plus a `generation` counter, the source commit
and the build time. A replica fetches it (conditionally) instead of every category, and verifies what it then
downloads against it.

The manifest is a pure function of the compiled files, the previous manifest and the source, so
builds are deterministic (same inputs, same bytes) and a rebuild with no change writes nothing:
- `generation`: the previous one + 1 when any published byte changed, else the previous one.
- `source_commit`: `git rev-parse HEAD` of the data directory's repository (null outside git),
  carried over when nothing changed (a commit that only edits the README must not make every
  replica download a new manifest).
- `built_at`: SOURCE_DATE_EPOCH when set (reproducible-builds convention, always wins); else the
  previous value when nothing changed; else the source's time: the commit time in git, the newest
  mtime in the data directory outside it (not the wall clock, which would make two builds of the
  same input differ); never earlier than the previous manifest's.
- `expires` (freeze detection): the time after which a replica reports the manifest as expired, and,
  when it requires signatures, refuses it once `EXPIRY_GRACE` more has passed (`builder.replica.trust`).
  A new generation expires `EXPIRES_AFTER` (14 days) after its `built_at`; a build with nothing changed
  keeps the previous `expires` (and writes nothing) while at least `RENEW_BELOW` (7 days) is left, and
  otherwise renews it to today (UTC, 00:00) + 14 days without a new generation, as it does for a new
  generation whose source time is that old. So a site rebuilt at least weekly never expires, and a
  frozen one is noticed after 14 days. With SOURCE_DATE_EPOCH (reproducible builds) the wall clock is
  never asked: expires = built_at + 14 days.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from builder.errors import Problem
from builder.routes import MANIFEST_FILE, SIGNATURE_FILE, routes
from builder.site.source import SourceFacts, iso_time

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# MANIFEST_FILE and SIGNATURE_FILE are owned by builder.routes; they stay importable from here for the
# modules that still name them through this one
__all__ = ["EXPIRES_AFTER", "EXPIRY_GRACE", "MANIFEST_FILE", "MANIFEST_SCHEMA_VERSION", "RENEW_BELOW", "SIGNATURE_FILE",
           "generation_time", "make_manifest", "manifest_entries", "manifest_files", "parse_iso", "parse_previous",
           "read_previous"]

MANIFEST_SCHEMA_VERSION = 1
_SELF = (MANIFEST_FILE, SIGNATURE_FILE)
#: seconds a manifest is valid after the build that wrote (or renewed) it
EXPIRES_AFTER = 14 * 86400
#: a build renews the `expires` of an unchanged manifest when less than this is left
RENEW_BELOW = 7 * 86400
#: seconds past `expires` after which a client that requires signatures refuses a manifest
EXPIRY_GRACE = 14 * 86400
_ISO_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
#: a source time: Unix seconds, a function giving them (asked only when needed), or None (the wall clock)
SourceTime = Callable[[], float | None] | float | None


def manifest_entries(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Object key -> {sha256, bytes, content_type} for every key of the route table, sorted by key."""
    digests: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    for r in routes(files):
        if r.file in _SELF:
            continue
        content = files[r.file]
        sha = digests.get(r.file)
        if sha is None:  # aliases and extensionless keys share their file's digest
            sha = digests[r.file] = hashlib.sha256(content).hexdigest()
        entries[r.key] = {"sha256": sha, "bytes": len(content), "content_type": r.content_type}
    return dict(sorted(entries.items()))


def parse_previous(raw: bytes | None) -> dict[str, Any] | None:
    """The previous manifest if it is usable; None if absent.

    Raises:
        ValueError: the manifest is malformed.
    """
    if raw is None:
        return None
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise ValueError("not a manifest object")
    gen = doc.get("generation")
    if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
        raise ValueError("generation is not a positive integer")
    if not (isinstance(doc.get("built_at"), str) and _ISO_RE.fullmatch(doc["built_at"])):
        doc["built_at"] = None  # a time we cannot compare is forgotten, not copied
    if not (isinstance(doc.get("expires"), str) and _ISO_RE.fullmatch(doc["expires"])):
        doc["expires"] = None
    return doc


def parse_iso(text: str) -> float:
    """A manifest time (`YYYY-MM-DDTHH:MM:SSZ`) as Unix seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def read_previous(out_dir: Path) -> bytes | None:
    """The manifest a site directory holds, or None."""
    try:
        return (out_dir / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        return None


def generation_time(prev: Mapping[str, Any] | None, source_time: SourceTime = None,
                    source_date_epoch: int | None = None) -> str:
    """`built_at` of a new generation: `source_date_epoch` (SOURCE_DATE_EPOCH, parsed by the caller)
    when given, else the source's time (None: the wall clock), never earlier than the previous
    manifest's. The change feed dates its entries with it."""
    if source_date_epoch is not None:
        return iso_time(source_date_epoch)
    when = source_time() if callable(source_time) else source_time
    built_at = iso_time(when if when is not None else datetime.now(UTC).timestamp())
    if prev is not None and prev.get("built_at"):
        built_at = max(built_at, prev["built_at"])  # fixed-width UTC strings compare as times
    return built_at


def make_manifest(files: Mapping[str, bytes], previous: bytes | None, commit: str | None,
                  source_time: SourceTime = None, source_date_epoch: int | None = None,
                  now: float | None = None) -> tuple[bytes, list[Problem]]:
    """The manifest's bytes for `files`, given the previous manifest's bytes (None on a first build).

    `source_time` dates a new generation; `source_date_epoch` (SOURCE_DATE_EPOCH) dates every build;
    `now` (the wall clock, None for none) starts the expiry period and renews it (module docstring).
    A pure function: the environment, git and the clock are the caller's (`builder.site.source`).
    """
    warnings: list[Problem] = []
    try:
        prev = parse_previous(previous)
    except ValueError as e:
        # An unreadable manifest cannot tell us its generation: restart the count, but say so loudly.
        warnings.append(Problem(MANIFEST_FILE, "", f"previous manifest unusable ({e}); generation restarts at 1",
                                "warning"))
        prev = None
    entries = manifest_entries(files)
    unchanged = prev is not None and prev["files"] == entries
    if prev is not None and unchanged:
        generation = prev["generation"]
        commit = prev.get("source_commit")
    else:
        generation = prev["generation"] + 1 if prev is not None else 1
    if source_date_epoch is not None:
        built_at = iso_time(source_date_epoch)
    elif prev is not None and unchanged and prev["built_at"]:
        built_at = prev["built_at"]
    else:
        built_at = generation_time(prev, source_time)
    expires = prev.get("expires") if prev is not None and unchanged else None
    if expires is None:
        expires = iso_time(parse_iso(built_at) + EXPIRES_AFTER)
    if now is not None and parse_iso(expires) - now < RENEW_BELOW:
        # renewed from the wall clock, rounded down to the day: builds of one day write the same bytes
        expires = iso_time(max(parse_iso(expires), now - now % 86400 + EXPIRES_AFTER))
    doc = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "generation": generation,
        "built_at": built_at,
        "expires": expires,
        "source_commit": commit,
        "files": entries,
    }
    return orjson.dumps(doc) + b"\n", warnings


def manifest_files(files: Mapping[str, bytes], previous: bytes | None, facts: SourceFacts,
                   sign_key: Ed25519PrivateKey | None = None) -> tuple[dict[str, bytes], list[Problem]]:
    """The manifest over `files` (continuing `previous`) and, with `sign_key` (an Ed25519 private key),
    its detached signature; and the warnings."""
    import time

    # SOURCE_DATE_EPOCH pins the build's time (reproducible builds): the wall clock is not asked then
    now = None if facts.source_date_epoch is not None else time.time()
    content, warnings = make_manifest(files, previous, facts.commit, facts.source_time, facts.source_date_epoch, now)
    out = {MANIFEST_FILE: content}
    if sign_key is not None:
        from builder.signing import sign

        out[SIGNATURE_FILE] = sign(content, sign_key)
    return out, warnings
