"""What the client persists in `state.json`, as typed objects: the accepted manifest, each source's
health (validators and circuit breaker), the copies on disk, and what was served and why.

`State.from_json` is tolerant, as a cache must be: a missing, unreadable or other-version file is an
empty state, and an entry lacking a required field or holding a value of the wrong type is dropped
(its copy is then not trusted) rather than failing the read. The JSON layout is the one earlier
versions wrote, so processes of both can share a cache folder. No I/O here: `cache.DiskCache` reads
and writes the file.

The classes compare by identity (`eq=False`): nothing needs value equality, and a generated `__eq__`
costs every cold start a quarter of a millisecond per class (compare `to_json()` instead).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from builder.categories import NAMES
from builder.replica.fetcher import Validators
from builder.replica.trust import Entry

__all__ = ["STATE_VERSION", "Copy", "LastRefresh", "ManifestState", "Served", "SourceState", "State", "iso"]

STATE_VERSION = 1
_T = TypeVar("_T")


def iso(ts: object) -> str | None:
    """A timestamp (seconds since the epoch) as ISO 8601 UTC with milliseconds; None for none."""
    if not isinstance(ts, int | float) or isinstance(ts, bool) or ts <= 0:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


@dataclass(eq=False)
class SourceState:
    """One source (a site base URL, or the GitHub raw base): its validators and its circuit breaker."""

    kind: str  # "cdn", "mirror" or "github"
    last_status: int | None = None
    last_error: str | None = None
    failures: int = 0
    last_ok: float | None = None
    #: the circuit breaker: the source is skipped until then (0: closed)
    breaker_until: float = 0.0
    #: validators of the manifest this source last served, and that manifest's sha256
    etag: str | None = None
    last_modified: str | None = None
    manifest_sha: str | None = None
    #: when this source last confirmed its manifest
    checked_at: float = 0.0
    #: a plain-API source (it answered 404 for the manifest): not asked for one again before then
    no_manifest_until: float = 0.0

    def circuit_open(self, now: float) -> bool:
        """The breaker is open: the source must not be asked before `breaker_until`."""
        return self.breaker_until > now

    def trip(self, now: float, cooldown: float, reason: str) -> None:
        """Record a failure and open the breaker for `cooldown` seconds."""
        self.breaker_until = now + cooldown
        self.last_error = reason
        self.failures += 1

    def succeeded(self, now: float) -> None:
        """Record a good answer: the breaker closes and the failure count resets."""
        self.failures, self.last_error, self.last_ok, self.breaker_until = 0, None, now, 0.0

    @property
    def validators(self) -> Validators:
        """The validators of the manifest this source last served."""
        return Validators(self.etag, self.last_modified)

    def info(self, now: float) -> dict[str, Any]:
        """The `source_info()["sources"]` entry."""
        return {"kind": self.kind, "last_status": self.last_status, "last_error": self.last_error,
                "failures": self.failures, "last_ok": iso(self.last_ok),
                "circuit_open_until": iso(self.breaker_until) if self.circuit_open(now) else None}


@dataclass(eq=False)
class ManifestState:
    """The accepted manifest: where it came from, until when it is fresh, and the entries the client uses."""

    sha256: str
    generation: int
    source: str
    url: str
    fetched_at: float
    checked_at: float
    fresh_until: float
    source_commit: str | None = None
    built_at: str | None = None
    signed_by: str | None = None
    #: object key -> entry, for the category documents only
    entries: dict[str, Entry] = field(default_factory=dict)
    #: the manifest's `expires` (Unix seconds; None: it has none)
    expires: float | None = None

    def info(self, now: float) -> dict[str, Any]:
        """The `source_info()["manifest"]` entry; `expired` says the site may be frozen (still used)."""
        expired = self.expires is not None and now > self.expires
        return {"source": self.source, "url": self.url, "generation": self.generation,
                "source_commit": self.source_commit, "built_at": self.built_at, "signed_by": self.signed_by,
                "fetched_at": iso(self.fetched_at), "checked_at": iso(self.checked_at),
                "fresh_until": iso(self.fresh_until), "expires": iso(self.expires), "expired": expired,
                "expired_seconds_ago": round(now - self.expires, 3) if expired and self.expires else None}


@dataclass(eq=False)
class Copy:
    """A document's copy on disk (`site/` or `github/`), named by its content."""

    sha256: str
    count: int
    url: str
    source: str
    fetched_at: float | None = None
    #: site copies: size, and the manifest generation and commit that list these bytes
    bytes: int | None = None
    generation: int | None = None
    source_commit: str | None = None
    #: GitHub and plain-API copies: the validators the source sent with them
    etag: str | None = None
    last_modified: str | None = None
    #: how the bytes were checked: "manifest" (its sha256), "none" (a plain-API source: shape and
    #: shrink checks only); None for GitHub copies and for states written before this field
    check: str | None = None

    @property
    def validators(self) -> Validators:
        """The validators to ask the source for this copy conditionally."""
        return Validators(self.etag, self.last_modified)


@dataclass(eq=False)
class Served:
    """What the client last served for a document, from where (`slot` names the copy), and why."""

    source: str | None  # "cdn", "mirror", "github", "cache"; None: nothing could be served
    at: float
    #: fresh for one TTL from then (0: not fresh)
    fresh_from: float = 0.0
    reason: str | None = None
    slot: str | None = None  # "site" or "github"
    sha256: str | None = None
    count: int | None = None
    url: str | None = None
    cached_from: str | None = None
    generation: int | None = None
    source_commit: str | None = None
    fetched_at: float | None = None
    #: as `Copy.check`
    check: str | None = None

    def info(self) -> dict[str, Any]:
        """The `source_info()["categories"]` (or `["legacy"]`) entry."""
        return {"source": self.source, "cached_from": self.cached_from, "url": self.url,
                "generation": self.generation, "source_commit": self.source_commit, "sha256": self.sha256,
                "models": self.count, "fetched_at": iso(self.fetched_at), "checked_at": iso(self.at),
                "verified": self.check == "manifest", "verification": _CHECKS.get(self.check or ""),
                "fallback_reason": self.reason}


_CHECKS = {"manifest": "size and sha256 against the site's manifest",
           "none": "unverified: the source publishes no manifest (shape and shrink checks only)"}


@dataclass(eq=False)
class LastRefresh:
    """The requests, body bytes and errors of the last refresh that went to the network."""

    at: str | None
    requests: int = 0
    body_bytes: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(eq=False)
class State:
    """All of `state.json`. `site` and `github` map a document name ("v2/clip") to its copy."""

    version: int = STATE_VERSION
    generation: int | None = None
    #: until when `generation` refuses lower ones (`trust.rollback_floor`; None: for ever)
    floor_until: float | None = None
    manifest: ManifestState | None = None
    sources: dict[str, SourceState] = field(default_factory=dict)
    site: dict[str, Copy] = field(default_factory=dict)
    github: dict[str, Copy] = field(default_factory=dict)
    served: dict[str, Served] = field(default_factory=dict)
    last_refresh: LastRefresh | None = None

    def source(self, base: str, kind: str) -> SourceState:
        """The state of source `base`, made on first use."""
        st = self.sources.get(base)
        if st is None:
            st = self.sources[base] = SourceState(kind)
        return st

    def copies(self, slot: str) -> dict[str, Copy]:
        """The copies of `slot` ("site" or "github")."""
        return self.site if slot == "site" else self.github

    def served_copy(self, name: str) -> Served | None:
        """What was served for `name`, if a copy was (a failure to serve anything does not count)."""
        s = self.served.get(name)
        return s if s is not None and s.source and s.slot and s.sha256 else None

    def info(self, now: float) -> dict[str, Any]:
        """The state's part of `source_info()`: generation, manifest, what was served, the sources."""
        def served(kind: str) -> dict[str, Any]:
            return {c: self.served[f"{kind}/{c}"].info() for c in NAMES if f"{kind}/{c}" in self.served}

        return {"generation": self.generation, "rollback_floor_until": iso(self.floor_until),
                "manifest": None if self.manifest is None else self.manifest.info(now),
                "categories": served("v2"), "legacy": served("v1"),
                "sources": {url: s.info(now) for url, s in self.sources.items()},
                "last_refresh": None if self.last_refresh is None else asdict(self.last_refresh)}

    def to_json(self) -> bytes:
        """The bytes of `state.json`."""
        return orjson.dumps(self, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes | None) -> State:
        """The state in `raw`; an empty state when it is absent, unreadable or of another version."""
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            return cls()
        gen = doc.get("generation")
        floor = doc.get("floor_until")
        manifest = _load(ManifestState, doc.get("manifest"))
        if manifest is not None:
            raw_entries = doc["manifest"].get("entries")
            entries = _table(Entry, raw_entries if isinstance(raw_entries, dict) else {})
            manifest.entries = entries
        last = _load(LastRefresh, doc.get("last_refresh"))
        if last is not None:
            errors = doc["last_refresh"].get("errors")
            last.errors = [e for e in errors if isinstance(e, str)] if isinstance(errors, list) else []
        return cls(generation=gen if isinstance(gen, int) and not isinstance(gen, bool) else None,
                   floor_until=float(floor) if isinstance(floor, int | float) and not isinstance(floor, bool) else None,
                   manifest=manifest, sources=_table(SourceState, doc.get("sources")),
                   site=_table(Copy, doc.get("site")), github=_table(Copy, doc.get("github")),
                   served=_table(Served, doc.get("served")), last_refresh=last)


# -- tolerant loading: the scalar fields of a dataclass, type-checked against their annotations ---------

_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float)}
_PLANS: dict[type, list[tuple[str, tuple[type, ...] | None, bool, bool]]] = {}


def _plan(cls: type) -> list[tuple[str, tuple[type, ...] | None, bool, bool]]:
    """Per field: name, accepted JSON types (None: not a scalar, loaded by the caller), whether None is
    accepted, whether the field is required."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = []
        for f in fields(cls):
            base, _, rest = str(f.type).partition(" | ")
            required = f.default is MISSING and f.default_factory is MISSING
            plan.append((f.name, _SCALARS.get(base), rest == "None", required))
        _PLANS[cls] = plan
    return plan


def _load(cls: type[_T], doc: object) -> _T | None:
    """An instance of dataclass `cls` from the JSON object `doc`: values of the wrong type keep the
    field's default; None when `doc` is not an object or a required field has no usable value."""
    if not isinstance(doc, dict):
        return None
    kw: dict[str, Any] = {}
    for name, types, nullable, required in _plan(cls):
        v = doc.get(name)
        if types is not None and isinstance(v, types) and not isinstance(v, bool):
            kw[name] = float(v) if float in types and isinstance(v, int) else v
        elif v is None and nullable and name in doc:
            kw[name] = None
        elif required:
            return None
    return cls(**kw)


def _table(cls: type[_T], doc: object) -> dict[str, _T]:
    """A JSON object of `cls` entries; unusable entries are dropped."""
    if not isinstance(doc, dict):
        return {}
    out = {}
    for key, entry in doc.items():
        value = _load(cls, entry)
        if value is not None:
            out[key] = value
    return out
