"""The replica client: reads the model reference from the CDN, verified, cached, with fallbacks.

Per document (a category's v2 records, or its v1 legacy file) the chain is:

1. a fresh copy already on disk (this process or another one made it within the TTL): no request;
2. each site source in order (the CDN, then the mirrors): its manifest, revalidated at most once per
   TTL with one conditional GET (a 304 transfers no body), then the document itself only when its
   sha256 in the manifest differs from the cached copy's, verified against the manifest;
3. the legacy GitHub files (converted to v2 by the import code; text from models.csv);
4. the last good copy on disk (the site's copy first, then GitHub's).

Any failure of a source (transport, timeout, HTTP status, parse, integrity, signature, rollback,
emptied or sharply shrunken payload) moves to the next step, and is recorded so `source_info()` can
say why. A source that fails at the transport level, or whose manifest is refused, is skipped for
`breaker_cooldown` seconds (circuit breaker): a dead CDN costs one timeout per refresh, not one per
category. Reads within the TTL touch neither the network nor the disk: they return an in-memory
read-only mapping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from builder.categories import BY_NAME, CATEGORIES, NAMES, Category
from builder.replica.cache import DiskCache, LockTimeout
from builder.replica.config import ReplicaConfig
from builder.replica.convert import legacy_source_file, v2_from_legacy
from builder.replica.errors import ModelNotFound, SourceFailed, SourceUnavailable
from builder.replica.sources import (
    MANIFEST_KEY,
    SIGNATURE_KEY,
    Http,
    SiteSource,
    check_bytes,
    check_shrink,
    parse_document,
    parse_manifest,
    status_failure,
    v1_key,
    v2_key,
    verify_signature,
)

ReadOnlyRecords = Mapping[str, Mapping[str, Any]]
_ALIASES = {"stable_diffusion": "image_generation"}
_V2_NAMES = {c: f"v2/{c}" for c in NAMES}


def freeze(value: Any) -> Any:
    """A read-only view of parsed JSON: objects become MappingProxyType, arrays tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A mutable (and JSON-serialisable) deep copy of what the client returned."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass
class _Loaded:
    sha256: str
    value: Any  # a frozen mapping (v2) or bytes (v1)
    count: int
    valid_until: float


@dataclass
class _Round:
    """One refresh under the file lock: each source's manifest is checked at most once in it."""

    now: float
    force: bool
    manifests: dict[str, Any] = field(default_factory=dict)  # source base -> manifest state or SourceFailed
    dirty: bool = False
    errors: list[str] = field(default_factory=list)


class ReplicaClient:
    """Thread-safe; several processes may share one cache folder.

    `ReplicaClient()` reads the environment; keyword arguments (the fields of `ReplicaConfig`, plus
    `cache_home`) override it, or pass a complete `ReplicaConfig`.
    """

    def __init__(self, config: ReplicaConfig | None = None, /, **settings: Any):
        if config is None:
            config = ReplicaConfig.from_env(**settings)
        elif settings:
            config = config.with_(**settings)
        self.config = config
        self._cache = DiskCache(config.cache_dir, config.lock_timeout)
        self._http = Http(config.max_bytes)
        self._sites = [SiteSource("cdn" if i == 0 and config.primary_api_url else "mirror", url)
                       for i, url in enumerate(config.site_urls)]
        self._mem: dict[str, _Loaded] = {}
        self._reasons: dict[str, list[str]] = {}
        self._lock = threading.RLock()

    # -- the read API ------------------------------------------------------------------------------

    def get_model_reference(self, category: Any, overwrite_existing: bool = False) -> ReadOnlyRecords:
        """Model key -> record of `category` (read-only). Raises SourceUnavailable if no source has it."""
        if not overwrite_existing and isinstance(category, str):  # the warm path, kept to a few lookups
            e = self._mem.get(_V2_NAMES.get(category, ""))  # (a str enum member hashes as its value)
            if e is not None and time.time() < e.valid_until:
                return e.value
        return self._get("v2", _category(category).name, overwrite_existing).value

    def get_model_reference_or_none(self, category: Any, overwrite_existing: bool = False) -> ReadOnlyRecords | None:
        try:
            return self.get_model_reference(category, overwrite_existing)
        except SourceUnavailable:
            return None

    def get_model(self, category: Any, key: str) -> Mapping[str, Any]:
        records = self.get_model_reference(category)
        try:
            return records[key]
        except KeyError:
            raise ModelNotFound(_category(category).name, key) from None

    def get_model_or_none(self, category: Any, key: str) -> Mapping[str, Any] | None:
        records = self.get_model_reference_or_none(category)
        return None if records is None else records.get(key)

    def get_all_model_references(self, overwrite_existing: bool = False) -> Mapping[str, ReadOnlyRecords]:
        """Category -> records for all 15 categories; SourceUnavailable if any of them has no source."""
        out = self.get_all_model_references_or_none(overwrite_existing)
        missing = [c for c, v in out.items() if v is None]
        if missing:
            name = f"v2/{missing[0]}"
            raise SourceUnavailable(name, self._reasons.get(name, []))
        return out  # type: ignore[return-value]

    def get_all_model_references_or_none(self, overwrite_existing: bool = False
                                         ) -> Mapping[str, ReadOnlyRecords | None]:
        names = [f"v2/{c}" for c in NAMES]
        self._ensure(names, overwrite_existing)
        return MappingProxyType({c: (self._mem[n].value if n in self._mem else None) for c, n in zip(NAMES, names,
                                                                                                    strict=True)})

    def get_legacy(self, category: Any, overwrite_existing: bool = False) -> bytes:
        """The v1 (legacy format) document of `category`, as bytes: what `.../v1/{category}` serves."""
        cat = _category(category)
        if not (cat.has_legacy or cat.managed_elsewhere):
            raise ValueError(f"{cat.name} has no legacy (v1) format")
        return self._get("v1", cat.name, overwrite_existing).value

    def get_legacy_or_none(self, category: Any, overwrite_existing: bool = False) -> bytes | None:
        try:
            return self.get_legacy(category, overwrite_existing)
        except SourceUnavailable:
            return None

    def refresh(self, categories: Iterable[Any] | None = None) -> None:
        """Check the sources now (ignoring the TTL) for `categories` (default: all v2 categories)."""
        cats = NAMES if categories is None else [_category(c).name for c in categories]
        self._ensure([f"v2/{c}" for c in cats], force=True)

    def source_info(self) -> dict[str, Any]:
        """Where the data came from and why: per category the source, URL, generation, commit, fetch
        time and fallback reason; the manifest; the health of each source; the last refresh."""
        state = self._cache.read_state()
        cfg = self.config
        man = state.get("manifest") or None

        def served(kind: str) -> dict[str, Any]:
            out = {}
            for cat in CATEGORIES:
                name = f"{kind}/{cat.name}"
                s = state["served"].get(name)
                if s is None:
                    continue
                out[cat.name] = {
                    "source": s.get("source"),
                    "cached_from": s.get("cached_from"),
                    "url": s.get("url"),
                    "generation": s.get("generation"),
                    "source_commit": s.get("source_commit"),
                    "sha256": s.get("sha256"),
                    "models": s.get("count"),
                    "fetched_at": _iso(s.get("fetched_at")),
                    "checked_at": _iso(s.get("at")),
                    "fallback_reason": s.get("reason"),
                }
            return out

        return {
            "cache_dir": str(cfg.cache_dir),
            "cache_error": self._cache.error,
            "offline": cfg.offline,
            "config": {
                "cdn": cfg.primary_api_url,
                "mirrors": list(cfg.mirror_urls),
                "github": cfg.github_raw_url if cfg.enable_github_fallback else None,
                "ttl_seconds": cfg.cache_ttl_seconds,
                "timeout_seconds": cfg.timeout,
                "signature_required": bool(cfg.trusted_keys),
            },
            "generation": state.get("generation"),
            "manifest": None if man is None else {
                "source": man.get("source"), "url": man.get("url"), "generation": man.get("generation"),
                "source_commit": man.get("source_commit"), "built_at": man.get("built_at"),
                "signed_by": man.get("signed_by"), "fetched_at": _iso(man.get("fetched_at")),
                "checked_at": _iso(man.get("checked_at")), "fresh_until": _iso(man.get("fresh_until")),
            },
            "categories": served("v2"),
            "legacy": served("v1"),
            "sources": {url: {
                "kind": s.get("kind"), "last_status": s.get("last_status"), "last_error": s.get("last_error"),
                "failures": s.get("failures", 0), "last_ok": _iso(s.get("last_ok")),
                "circuit_open_until": _iso(s.get("breaker_until")) if s.get("breaker_until", 0) > time.time()
                else None,
            } for url, s in state["sources"].items()},
            "last_refresh": state.get("last_refresh"),
            "this_process": {"requests": self._http.requests, "body_bytes": self._http.body_bytes},
        }

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ReplicaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async twins: a fresh in-memory copy is returned at once; a refresh runs in a worker thread so
    # the event loop never blocks on the network or the file lock

    async def get_model_reference_async(self, category: Any, overwrite_existing: bool = False) -> ReadOnlyRecords:
        hit = None if overwrite_existing else self._fresh(f"v2/{_category(category).name}")
        if hit is not None:
            return hit.value
        return await _in_thread(self.get_model_reference, category, overwrite_existing)

    async def get_model_reference_or_none_async(self, category: Any, overwrite_existing: bool = False
                                                ) -> ReadOnlyRecords | None:
        try:
            return await self.get_model_reference_async(category, overwrite_existing)
        except SourceUnavailable:
            return None

    async def get_model_async(self, category: Any, key: str) -> Mapping[str, Any]:
        records = await self.get_model_reference_async(category)
        try:
            return records[key]
        except KeyError:
            raise ModelNotFound(_category(category).name, key) from None

    async def get_model_or_none_async(self, category: Any, key: str) -> Mapping[str, Any] | None:
        records = await self.get_model_reference_or_none_async(category)
        return None if records is None else records.get(key)

    async def get_all_model_references_async(self, overwrite_existing: bool = False
                                             ) -> Mapping[str, ReadOnlyRecords]:
        return await _in_thread(self.get_all_model_references, overwrite_existing)

    async def get_all_model_references_or_none_async(self, overwrite_existing: bool = False
                                                     ) -> Mapping[str, ReadOnlyRecords | None]:
        return await _in_thread(self.get_all_model_references_or_none, overwrite_existing)

    async def get_legacy_async(self, category: Any, overwrite_existing: bool = False) -> bytes:
        hit = None if overwrite_existing else self._fresh(f"v1/{_category(category).name}")
        if hit is not None:
            return hit.value
        return await _in_thread(self.get_legacy, category, overwrite_existing)

    async def get_legacy_or_none_async(self, category: Any, overwrite_existing: bool = False) -> bytes | None:
        try:
            return await self.get_legacy_async(category, overwrite_existing)
        except SourceUnavailable:
            return None

    async def refresh_async(self, categories: Iterable[Any] | None = None) -> None:
        await _in_thread(self.refresh, categories)

    # -- machinery -----------------------------------------------------------------------------

    def _fresh(self, name: str) -> _Loaded | None:
        e = self._mem.get(name)
        return e if e is not None and time.time() < e.valid_until else None

    def _get(self, kind: str, cat: str, force: bool) -> _Loaded:
        name = f"{kind}/{cat}"
        if not force:
            e = self._mem.get(name)
            if e is not None and time.time() < e.valid_until:  # the warm path: no I/O, no lock
                return e
        self._ensure([name], force)
        e = self._mem.get(name)
        if e is None:
            raise SourceUnavailable(name, self._reasons.get(name, []))
        return e

    def _ensure(self, names: list[str], force: bool) -> None:
        with self._lock:
            stale = names if force else [n for n in names if self._fresh(n) is None]
            if not stale:
                return
            if self.config.offline:
                self._load_offline(stale)
            else:
                self._refresh(stale, force)

    def _refresh(self, names: list[str], force: bool) -> None:
        if not force:
            # Lock-free first: copies another process confirmed within the TTL are adopted without
            # waiting for the lock (content-addressed copies make this safe), so readers of a warm cache
            # never queue behind a refresh that is waiting on the network.
            state = self._cache.read_state()
            now = time.time()
            names = [n for n in names if not self._adopt_fresh(n, state, now)]
            if not names:
                return
        before = (self._http.requests, self._http.body_bytes)
        try:
            with self._cache.lock():
                state = self._cache.read_state()
                rnd = _Round(time.time(), force)
                for name in names:
                    self._resolve(name, state, rnd)
                requests = self._http.requests - before[0]
                if requests:
                    state["last_refresh"] = {
                        "at": _iso(rnd.now), "requests": requests, "body_bytes": self._http.body_bytes - before[1],
                        "errors": rnd.errors,
                    }
                    rnd.dirty = True
                if rnd.dirty:
                    self._cache.write_state(state)
                    self._cache.prune(state)
        except LockTimeout:
            # Another process has held the cache longer than lock_timeout (its refresh is stuck on slow
            # sources). Serve what the cache holds now rather than wait: copies are verified on read.
            state = self._cache.read_state()
            now = time.time()
            for name in names:
                reason = f"cache locked by another process for over {self.config.lock_timeout:g}s"
                if not self._adopt(name, state, state["served"].get(name), now + self.config.cache_ttl_seconds):
                    self._last_good(name, state, now, [reason], write=False)

    def _load_offline(self, names: list[str]) -> None:
        # Offline readers take no lock (they must not wait for the online process's network I/O).
        # Copies are content-addressed, so the state read here names files that exist unless a
        # prune came in between: then one re-read of the state finds the new ones.
        now = time.time()
        until = now + self.config.cache_ttl_seconds  # re-read the folder every TTL: see the parent's refreshes
        state = self._cache.read_state()
        for name in names:
            if self._adopt(name, state, state["served"].get(name), until):
                continue
            state = self._cache.read_state()
            if not self._adopt(name, state, state["served"].get(name), until):
                self._last_good(name, state, now, ["offline: reading the cache only"], write=False)

    def _resolve(self, name: str, state: dict[str, Any], rnd: _Round) -> None:
        now = rnd.now
        # 1. another process (or this one) produced a fresh copy within the TTL: adopt it, no request
        if not rnd.force and self._adopt_fresh(name, state, now):
            return
        errors: list[str] = []
        previous = self._previous_count(name, state)
        # 2. the CDN, then the mirrors
        for src in self._sites:
            try:
                manifest = self._manifest(src, state, rnd)  # records its own failures
            except SourceFailed as e:
                errors.append(f"{src.label}: manifest: {e.reason}")
                continue
            try:
                self._from_site(name, src, manifest, state, rnd, previous, errors)
                return
            except SourceFailed as e:
                errors.append(f"{src.label}: {name.split('/')[1]}: {e.reason}")
                if e.transport:  # the source is unhealthy: no other document tries it in this refresh
                    rnd.manifests[src.base] = e
                    self._source_failed(src.base, src.kind, state, e, rnd)
        # 3. the legacy GitHub files
        if self.config.enable_github_fallback:
            try:
                self._from_github(name, state, rnd, previous, errors)
                return
            except SourceFailed as e:
                errors.append(f"github: {e.reason}")
                if e.transport:  # as for the CDN: one timeout per refresh, not one per category
                    rnd.manifests[self.config.github_raw_url] = e
                    self._source_failed(self.config.github_raw_url, "github", state, e, rnd)
        # 4. the last good copy on disk
        rnd.errors += [f"{name}: {e}" for e in errors]
        self._last_good(name, state, now, errors, write=True)
        rnd.dirty = True

    # -- step 2: site sources

    def _manifest(self, src: SiteSource, state: dict[str, Any], rnd: _Round) -> dict[str, Any]:
        """The current manifest (state form) as `src` confirms it; at most one request per round."""
        done = rnd.manifests.get(src.base)
        if isinstance(done, SourceFailed):
            raise SourceFailed(f"{done.reason} (not retried in this refresh)")
        if done is not None:
            return done
        try:
            result = self._check_manifest(src, state, rnd)
        except SourceFailed as e:
            rnd.manifests[src.base] = e
            # any manifest failure makes the source useless for this refresh: skip it for the cooldown
            self._source_failed(src.base, src.kind, state, e, rnd)
            raise
        rnd.manifests[src.base] = result
        return result

    def _check_manifest(self, src: SiteSource, state: dict[str, Any], rnd: _Round) -> dict[str, Any]:
        cfg, now = self.config, rnd.now
        st = state["sources"].setdefault(src.base, {"kind": src.kind})
        cur = state.get("manifest")
        holds_current = cur is not None and st.get("manifest_sha") == cur.get("sha256")
        if holds_current and not rnd.force and st.get("checked_at", 0) + cfg.cache_ttl_seconds > now:
            return cur  # confirmed within the TTL (by this process or another one)
        if st.get("breaker_until", 0) > now:
            left = st["breaker_until"] - now
            raise SourceFailed(f"skipped: circuit open for {left:.1f}s more after: {st.get('last_error')}",
                               transport=False)
        headers = {}
        if holds_current:  # our validators describe the manifest we hold: a 304 confirms it
            if st.get("etag"):
                headers["If-None-Match"] = st["etag"]
            if st.get("last_modified"):
                headers["If-Modified-Since"] = st["last_modified"]
        r = self._http.get(src.url(MANIFEST_KEY), cfg.timeout, headers)
        st["last_status"] = r.status
        rnd.dirty = True
        if r.status == 304 and holds_current:
            assert cur is not None
            st.update(checked_at=now, failures=0, last_error=None, last_ok=now, breaker_until=0)
            cur["checked_at"] = now
            cur["fresh_until"] = max(cur.get("fresh_until", 0), now + cfg.cache_ttl_seconds)
            return cur
        if r.status != 200:
            raise status_failure(r)
        m = parse_manifest(r.body)
        signature = None
        signed_by = None
        if cfg.trusted_keys:
            sr = self._http.get(src.url(SIGNATURE_KEY), cfg.timeout)
            if sr.status != 200:
                raise SourceFailed(f"manifest signature: HTTP {sr.status} (a signature by a trusted key is required)")
            signature = sr.body
            signed_by = verify_signature(m.raw, signature, cfg.trusted_keys)
        gen = state.get("generation")
        if isinstance(gen, int) and m.generation < gen:
            raise SourceFailed(f"manifest generation {m.generation} is lower than the cached {gen}: refused")
        entries = {}
        for c in NAMES:
            for key in (v2_key(c), v1_key(c)):
                e = m.files.get(key)
                if e is not None:
                    entries[key] = {"sha256": e["sha256"], "bytes": e["bytes"]}
        self._cache.write_file("site/manifest.json", m.raw)
        if signature is not None:
            self._cache.write_file("site/manifest.json.sig", signature)
        state["generation"] = m.generation
        state["manifest"] = {
            "sha256": m.sha256, "generation": m.generation, "source_commit": m.source_commit, "built_at": m.built_at,
            "source": src.kind, "url": src.url(MANIFEST_KEY), "signed_by": signed_by, "fetched_at": now,
            "checked_at": now, "fresh_until": now + cfg.cache_ttl_seconds, "entries": entries,
        }
        st.update(etag=r.headers.get("etag"), last_modified=r.headers.get("last-modified"), manifest_sha=m.sha256,
                  checked_at=now, failures=0, last_error=None, last_ok=now,
                  breaker_until=0)
        return state["manifest"]

    def _from_site(self, name: str, src: SiteSource, manifest: dict[str, Any], state: dict[str, Any],
                   rnd: _Round, previous: int | None, errors: list[str]) -> None:
        kind, cat = name.split("/", 1)
        key = v2_key(cat) if kind == "v2" else v1_key(cat)
        entry = manifest["entries"].get(key)
        if entry is None:
            raise SourceFailed(f"the manifest lists no {key}")
        sha = entry["sha256"]
        slot = state["site"].get(name)
        if not (slot and slot.get("sha256") == sha):
            slot = None
        loaded = self._mem.get(name)
        if slot is None or loaded is None or loaded.sha256 != sha:
            body = self._cache.read_copy("site", name, sha) if slot is not None else None
            if body is None:  # changed (or never fetched, or damaged on disk): download it, and only it
                r = self._http.get(src.url(key), self.config.timeout)
                rnd.dirty = True
                if r.status != 200:
                    raise status_failure(r)
                check_bytes(r.body, entry)
                doc = parse_document(r.body)
                count = len(doc)
                check_shrink(count, previous, self.config.shrink_ratio)
                self._cache.write_copy("site", name, r.body)
                slot = state["site"][name] = {
                    "sha256": sha, "bytes": len(r.body), "count": count, "url": src.url(key), "source": src.kind,
                    "generation": manifest["generation"], "source_commit": manifest.get("source_commit"),
                    "fetched_at": rnd.now,
                }
                loaded = self._make_loaded(kind, r.body, sha, 0.0, doc)
            else:
                loaded = self._make_loaded(kind, body, sha, 0.0)
        assert slot is not None
        if slot.get("generation") != manifest["generation"]:  # the same bytes are still current
            slot["generation"], slot["source_commit"] = manifest["generation"], manifest.get("source_commit")
        loaded.valid_until = manifest["checked_at"] + self.config.cache_ttl_seconds
        self._mem[name] = loaded
        self._set_served(state, name, rnd, {
            "source": src.kind, "url": src.url(key), "slot": "site", "sha256": sha, "count": loaded.count,
            "generation": manifest["generation"], "source_commit": manifest.get("source_commit"),
            "fetched_at": slot.get("fetched_at"), "fresh_from": manifest["checked_at"],
            "reason": "; ".join(errors) or None,
        })
        self._reasons.pop(name, None)

    # -- step 3: GitHub

    def _from_github(self, name: str, state: dict[str, Any], rnd: _Round, previous: int | None,
                     errors: list[str]) -> None:
        cfg, now = self.config, rnd.now
        kind, cat_name = name.split("/", 1)
        cat = BY_NAME[cat_name]
        file = legacy_source_file(cat, kind)
        if file is None:
            raise SourceFailed(f"{cat_name} has no legacy GitHub file")
        repo = cfg.text_github_repo if cat.legacy_kind == "text" else cfg.image_github_repo
        url = repo.raw_url(cfg.github_raw_url, file)
        st = state["sources"].setdefault(cfg.github_raw_url, {"kind": "github"})
        done = rnd.manifests.get(cfg.github_raw_url)
        if isinstance(done, SourceFailed):
            raise SourceFailed(f"{done.reason} (not retried in this refresh)")
        if st.get("breaker_until", 0) > now:
            left = st["breaker_until"] - now
            raise SourceFailed(f"skipped: circuit open for {left:.1f}s more after: {st.get('last_error')}")
        slot = state["github"].get(name)
        usable = slot if slot and slot.get("url") == url else None
        headers = {}
        if usable:
            if usable.get("etag"):
                headers["If-None-Match"] = usable["etag"]
            if usable.get("last_modified"):
                headers["If-Modified-Since"] = usable["last_modified"]
        r = self._http.get(url, cfg.github_request_timeout, headers)
        rnd.dirty = True
        st["last_status"] = r.status
        body: bytes | None = None
        if r.status == 304 and usable:
            body = self._cache.read_copy("github", name, usable.get("sha256"))
            if body is None:  # our copy is gone or damaged: ask again without validators
                r = self._http.get(url, cfg.github_request_timeout)
                st["last_status"] = r.status
        if body is None:
            if r.status != 200:
                raise status_failure(r)
            body = v2_from_legacy(cat, r.body) if kind == "v2" else r.body
            doc = parse_document(body)
            count = len(doc)
            if count == 0:  # the legacy repositories never publish an empty file: a broken answer
                raise SourceFailed(f"{file} holds no model: refused")
            check_shrink(count, previous, cfg.shrink_ratio)
            sha = self._cache.write_copy("github", name, body)
            usable = state["github"][name] = {
                "sha256": sha, "count": count, "url": url, "source": "github", "etag": r.headers.get("etag"),
                "last_modified": r.headers.get("last-modified"), "fetched_at": now,
            }
        assert usable is not None
        st.update(failures=0, last_error=None, last_ok=now, breaker_until=0)
        loaded = self._mem.get(name)
        if loaded is None or loaded.sha256 != usable["sha256"]:
            loaded = self._make_loaded(kind, body, usable["sha256"], 0.0)
        loaded.valid_until = now + cfg.cache_ttl_seconds
        self._mem[name] = loaded
        self._set_served(state, name, rnd, {
            "source": "github", "url": url, "slot": "github", "sha256": usable["sha256"], "count": loaded.count,
            "generation": None, "source_commit": None, "fetched_at": usable.get("fetched_at"),
            "fresh_from": now, "reason": "; ".join(errors) or None,
        })
        self._reasons.pop(name, None)

    # -- step 4 and the disk

    def _last_good(self, name: str, state: dict[str, Any], now: float, errors: list[str], write: bool) -> bool:
        kind = name.split("/", 1)[0]
        reason = "; ".join(errors) or None
        until = now + self.config.cache_ttl_seconds
        for slot_name in ("site", "github"):  # a verified site copy is better than a converted one
            slot = state[slot_name].get(name)
            if not slot:
                continue
            loaded = self._mem.get(name)
            if loaded is None or loaded.sha256 != slot.get("sha256"):
                body = self._cache.read_copy(slot_name, name, slot.get("sha256"))
                if body is None:
                    continue
                loaded = self._make_loaded(kind, body, slot["sha256"], until)
            loaded.valid_until = until
            self._mem[name] = loaded
            if write:
                state["served"][name] = {
                    "source": "cache", "cached_from": slot.get("source"), "url": slot.get("url"), "slot": slot_name,
                    "sha256": slot["sha256"], "count": loaded.count, "generation": slot.get("generation"),
                    "source_commit": slot.get("source_commit"), "fetched_at": slot.get("fetched_at"), "at": now,
                    "fresh_from": now, "reason": reason,
                }
            self._reasons[name] = errors
            return True
        loaded = self._mem.get(name)
        if loaded is not None:  # the cache folder was emptied under us: keep serving what we hold
            loaded.valid_until = until
            self._reasons[name] = errors
            return True
        self._reasons[name] = errors
        if write:
            state["served"][name] = {"source": None, "at": now, "fresh_from": 0, "reason": reason}
        return False

    def _adopt_fresh(self, name: str, state: dict[str, Any], now: float) -> bool:
        # freshness is judged with this client's TTL, from when the copy was last confirmed
        served = state["served"].get(name)
        ttl = self.config.cache_ttl_seconds
        if served and served.get("source") and served.get("fresh_from", 0) + ttl > now:
            return self._adopt(name, state, served, served["fresh_from"] + ttl)
        return False

    def _adopt(self, name: str, state: dict[str, Any], served: dict[str, Any] | None, valid_until: float) -> bool:
        """Take the copy `served` names from the disk (or memory, when it holds the same bytes)."""
        if not served or not served.get("source") or not served.get("slot"):
            return False
        sha = served.get("sha256")
        loaded = self._mem.get(name)
        if loaded is None or loaded.sha256 != sha:
            body = self._cache.read_copy(served["slot"], name, sha)
            if body is None:
                return False
            loaded = self._make_loaded(name.split("/", 1)[0], body, sha, valid_until)  # type: ignore[arg-type]
        loaded.valid_until = valid_until
        self._mem[name] = loaded
        if served.get("reason"):
            self._reasons[name] = [served["reason"]]
        return True

    def _make_loaded(self, kind: str, body: bytes, sha: str, valid_until: float,
                     doc: dict[str, Any] | None = None) -> _Loaded:
        if doc is None:
            doc = orjson.loads(body)
        assert doc is not None
        if kind == "v2":
            return _Loaded(sha, freeze(doc), len(doc), valid_until)
        return _Loaded(sha, bytes(body), len(doc), valid_until)

    def _previous_count(self, name: str, state: dict[str, Any]) -> int | None:
        """The model count of the copy the client last served: the reference of shrink protection."""
        served = state["served"].get(name)
        if served and served.get("source") and isinstance(served.get("count"), int):
            return served["count"]
        counts = [s["count"] for s in (state["site"].get(name), state["github"].get(name))
                  if s and isinstance(s.get("count"), int)]
        return max(counts) if counts else None

    def _set_served(self, state: dict[str, Any], name: str, rnd: _Round, served: dict[str, Any]) -> None:
        served["at"] = rnd.now
        state["served"][name] = served
        rnd.dirty = True

    def _source_failed(self, base: str, kind: str, state: dict[str, Any], e: SourceFailed, rnd: _Round) -> None:
        st = state["sources"].setdefault(base, {"kind": kind})
        if e.reason.startswith("skipped: circuit open"):
            return  # already open: do not extend it
        cooldown = self.config.cooldown
        if e.retry_after is not None:  # the server said when to come back (429/503 Retry-After), within reason
            cooldown = max(cooldown, min(e.retry_after, 3600.0))
        st.update(breaker_until=rnd.now + cooldown, last_error=e.reason, failures=st.get("failures", 0) + 1)
        rnd.dirty = True


async def _in_thread(fn: Any, *args: Any) -> Any:
    import asyncio  # not at module level: the CLI and sync users do not pay for importing it

    return await asyncio.to_thread(fn, *args)


def _category(category: Any) -> Category:
    name = getattr(category, "value", category)
    if not isinstance(name, str):
        raise ValueError(f"not a category: {category!r}")
    name = _ALIASES.get(name, name)
    cat = BY_NAME.get(name)
    if cat is None:
        raise ValueError(f"unknown category {name!r} (known: {', '.join(NAMES)})")
    return cat


def _iso(ts: object) -> str | None:
    if not isinstance(ts, int | float) or ts <= 0:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


_default: ReplicaClient | None = None
_default_lock = threading.Lock()


def default_client() -> ReplicaClient:
    """The process-wide client configured from the environment (like the existing library's singleton)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ReplicaClient()
        return _default
