"""The trust rules: what makes a fetched manifest or document acceptable. Bytes in, verdicts out.

No I/O here (no network, no disk, no clock): every function takes what was fetched and what the client
already holds, and either returns the parsed value or raises a `TrustError` subclass saying why, with
the expected and the actual value. The client decides what a refusal means (fall back, keep the last
good copy).

- `parse_manifest`: the manifest's shape (files table, positive generation, a sha256 and size per file);
- `check_rollback`: a manifest must not go back to an older generation while the floor holds;
- `check_expiry`: a manifest past its `expires` is reported; one that must be signed is refused once
  it expired longer ago than `EXPIRY_GRACE`;
- `rollback_floor`: until when the accepted generation is a floor (the anti-rollback rule below);
- `verify_signature`: with trusted keys configured, the manifest's detached Ed25519 signature;
- `check_digest`: a document's size and sha256 against its manifest entry;
- `parse_document`: a category document is a JSON object of records;
- `check_count`: a document must not be empty, nor shrink far below the copy already held;
- `parse_renames`: the renames table is {category: {old key: new key}}.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from builder.replica.errors import (
    DigestMismatch,
    DocumentError,
    ExpiredManifest,
    ManifestError,
    RollbackError,
    ShrinkRefused,
    SignatureError,
)

__all__ = [
    "Entry",
    "Manifest",
    "check_count",
    "check_digest",
    "check_expiry",
    "check_rollback",
    "describe",
    "parse_document",
    "parse_manifest",
    "parse_renames",
    "rollback_floor",
    "verify_signature",
]

_HEX = frozenset("0123456789abcdef")
#: a signed manifest expired longer ago than this is refused (the build writes `expires` 14 days after
#: it and renews it weekly: `builder.site.manifest`), so a frozen or replayed site is noticed within 28 days
EXPIRY_GRACE = 14 * 86400.0
#: the longest an unsigned source's generation stays a rollback floor: the build's expiry period
UNSIGNED_FLOOR = 14 * 86400.0


@dataclass(eq=False)  # compared by its fields where needed; see builder.replica.state
class Entry:
    """What the manifest says of one published file: its sha256 (hex) and its size in bytes."""

    sha256: str
    bytes: int


class Manifest(NamedTuple):
    """A parsed manifest. `raw` is the exact bytes (what a signature covers), `sha256` their digest."""

    raw: bytes
    sha256: str
    generation: int
    source_commit: str | None
    built_at: str | None
    files: Mapping[str, Entry]
    #: `expires` as Unix seconds (None: the manifest has none, an older build)
    expires: float | None = None


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest in `raw`.

    Raises:
        ManifestError: unless it has the shape `hmr build` writes.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ManifestError(f"manifest is not JSON ({describe(raw)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise ManifestError(f"manifest has no files table ({describe(raw)})")
    gen = doc.get("generation")
    if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
        raise ManifestError("manifest generation is not a positive integer")
    commit, built = doc.get("source_commit"), doc.get("built_at")
    return Manifest(raw, hashlib.sha256(raw).hexdigest(), gen, commit if isinstance(commit, str) else None,
                    built if isinstance(built, str) else None, _Entries(doc["files"]), _time(doc.get("expires")))


class _Entries(Mapping[str, Entry]):
    """The manifest's files table, each entry checked when it is read: a client reads a handful of the
    thousands a site lists, and checking them all was a fifth of its cold start.

    Raises (on reading an entry):
        ManifestError: the entry has no valid sha256/bytes.
    """

    def __init__(self, raw: dict[str, Any]):
        self._raw = raw

    def __getitem__(self, key: str) -> Entry:
        e = self._raw[key]
        size = e.get("bytes") if isinstance(e, dict) else None
        if not (isinstance(e, dict) and _is_sha(e.get("sha256")) and isinstance(size, int)
                and not isinstance(size, bool)):
            raise ManifestError(f"manifest entry {key!r} has no valid sha256/bytes")
        return Entry(e["sha256"], size)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw


def _time(value: object) -> float | None:
    """A manifest time (`YYYY-MM-DDTHH:MM:SSZ`) as Unix seconds; None when absent.

    Raises:
        ManifestError: it is present but not such a time (a manifest must not hide its expiry).
    """
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        if not isinstance(value, str) or len(value) != 20:
            raise ValueError
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ManifestError(f"manifest expires is not a UTC time (YYYY-MM-DDTHH:MM:SSZ): {value!r}") from None


def check_rollback(manifest: Manifest, accepted: int | None, floor_until: float | None = None,
                   now: float = 0.0) -> None:
    """Refuse a manifest older than the generation already accepted (`accepted`; None: none yet) while
    that generation is a floor (until `floor_until`; None: for ever).

    Raises:
        RollbackError: `manifest.generation` is lower than `accepted`, before `floor_until`.
    """
    if accepted is not None and manifest.generation < accepted and (floor_until is None or now < floor_until):
        raise RollbackError(manifest.generation, accepted)


def rollback_floor(manifest: Manifest, now: float, *, signed: bool, previous_until: float | None,
                   new_generation: bool) -> float | None:
    """Until when the generation of `manifest`, just accepted at `now`, refuses lower ones.

    The anti-rollback rule: a signed manifest is a floor while it is usable (until its `expires` plus
    `EXPIRY_GRACE`; for ever without `expires`), and each signed manifest sets it anew. An unsigned one
    proves nothing about who wrote it, so its floor ends at its `expires` and at most `UNSIGNED_FLOOR`
    (14 days, the build's expiry period) after its generation was first accepted, and a same-generation
    manifest (a renewal) never extends it: a wrong unsigned source (a mirror left on a bumped counter,
    a site rebuilt from scratch) locks honest updates out for one expiry period at most. `previous_until`
    is the floor in force; `new_generation` says whether `manifest` changed the accepted generation.
    """
    if signed:
        return None if manifest.expires is None else manifest.expires + EXPIRY_GRACE
    if not new_generation and previous_until is not None:
        return previous_until
    cap = now + UNSIGNED_FLOOR
    return cap if manifest.expires is None else min(manifest.expires, cap)


def check_expiry(expires: float | None, now: float, *, signed: bool) -> float | None:
    """How long ago a manifest expiring at `expires` expired (None: it has not, or has no expiry).

    Raises:
        ExpiredManifest: `signed` (signatures are required) and it expired over `EXPIRY_GRACE` ago.
    """
    if expires is None or now <= expires:
        return None
    late = now - expires
    if signed and late > EXPIRY_GRACE:
        raise ExpiredManifest(f"manifest expired {late / 86400:.1f} days ago, beyond the "
                              f"{EXPIRY_GRACE / 86400:g}-day grace for signed manifests: refused")
    return late


def verify_signature(manifest: bytes, signature: bytes, trusted_keys: tuple[str, ...]) -> str:
    """The id of the trusted key whose signature `signature` is over the exact bytes `manifest`.

    Raises:
        SignatureError: the signature is malformed, made by an untrusted key, or does not match.
    """
    from builder.signing import parse_public_key, verify  # cryptography costs import time: only when needed

    try:
        return verify(manifest, signature, [parse_public_key(k) for k in trusted_keys])
    except SignatureError as e:
        raise SignatureError(f"manifest signature refused: {e}") from None


def check_digest(body: bytes, entry: Entry) -> None:
    """Check a document's size, then its sha256, against its manifest entry.

    Raises:
        DigestMismatch: either differs (a truncated, stale or tampered file).
    """
    if len(body) != entry.bytes:
        raise DigestMismatch(f"size {len(body)} differs from the manifest's {entry.bytes} (truncated or stale)")
    sha = hashlib.sha256(body).hexdigest()
    if sha != entry.sha256:
        raise DigestMismatch(f"sha256 {sha[:12]}... differs from the manifest's {entry.sha256[:12]}...")


def parse_document(body: bytes) -> dict[str, Any]:
    """A category document (v2 records, or a v1 legacy file): a JSON object of objects.

    Raises:
        DocumentError: it is not.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise DocumentError(f"not JSON ({describe(body)})") from None
    if not isinstance(doc, dict):
        raise DocumentError(f"not a JSON object ({type(doc).__name__})")
    for key, rec in doc.items():
        if not isinstance(rec, dict):
            raise DocumentError(f"record {key!r} is not an object")
    return doc


def check_count(count: int, previous: int | None, ratio: float, what: str | None = None) -> None:
    """Shrink protection: refuse a document with far fewer models than the copy already served.

    `previous` is that copy's model count (None: no copy yet); a count below `previous * ratio` is
    refused (`ratio` 0 disables the check). With `what` set (a legacy file, which is never published
    empty), an empty document is refused too.

    Raises:
        ShrinkRefused: the document is refused.
    """
    if what is not None and count == 0:
        raise ShrinkRefused(f"{what} holds no model: refused")
    if previous is None or ratio <= 0 or previous == 0:
        return
    if count < previous * ratio:
        raise ShrinkRefused(f"{count} models where the cached copy has {previous} (shrank below {ratio:.0%}): refused")


def parse_renames(body: bytes) -> dict[str, dict[str, str]]:
    """The renames table the site publishes: category -> {old model key: new model key}.

    Raises:
        DocumentError: it is not JSON of that shape.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise DocumentError(f"renames: not JSON ({describe(body)})") from None
    if not isinstance(doc, dict) or not all(
            isinstance(t, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in t.items())
            for t in doc.values()):
        raise DocumentError("renames: not an object of {old: new} objects")
    return doc


def describe(raw: bytes) -> str:
    """A short description of a body that is not what was expected (an HTML captive portal, ...)."""
    head = raw[:200].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page"
    if not raw:
        return "empty body"
    return f"{len(raw)} bytes starting {raw[:24]!r}"


def _is_sha(v: object) -> bool:
    return isinstance(v, str) and len(v) == 64 and _HEX.issuperset(v)
