"""The replica client: reads the model reference from the CDN, verified, cached, with fallbacks.

Per document (a category's v2 records, or its v1 legacy file) the chain is:

1. a fresh copy already on disk (this process or another one made it within the TTL): no request;
2. each site source in order (the CDN, then the mirrors): its manifest, revalidated at most once per
   TTL with one conditional GET (a 304 transfers no body), then the document itself only when its
   sha256 in the manifest differs from the cached copy's, verified against the manifest;
   A source without a manifest (HTTP 404 for it: the old PRIMARY, or a site that publishes none) is a
   plain-API source: each document is one conditional GET of the key the old API serves, checked for
   shape and shrink only, and reported unverified; its manifest is asked for again after
   `PLAIN_RECHECK` seconds, so a no-change refresh transfers no body at all;
3. the legacy GitHub files (converted to v2 by the import code; text from models.csv);
4. the last good copy on disk (the site's copy first, then GitHub's).

The parts: `fetcher` moves bytes (one error type, `FetchFailed`), `trust` judges them (no I/O), `state`
types what is persisted and `cache` stores it; `direct` holds the document-by-document steps (plain-API
sites, GitHub). This module decides: any failure of a source
(`SourceFailure`) moves to the next step and is recorded so `source_info()` can say why. A source that
fails at the transport level, or whose manifest is refused, is skipped for `breaker_cooldown` seconds
(circuit breaker): a dead CDN costs one timeout per refresh, not one per category. Reads within the TTL
touch neither the network nor the disk: they return an in-memory read-only mapping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from builder.categories import NAMES
from builder.replica.api import ReadAPI, ReadOnlyRecords, category_of, freeze, thaw
from builder.replica.cache import DiskCache, LockTimeout
from builder.replica.config import ReplicaConfig
from builder.replica.copies import Copies, Loaded, load
from builder.replica.direct import DirectReads, Round
from builder.replica.errors import (
    FetchFailed,
    ManifestError,
    SignatureError,
    SourceFailure,
    SourceSkipped,
    SourceUnavailable,
)
from builder.replica.fetcher import FetcherInterface, HttpxFetcher
from builder.replica.sources import SiteSource, document_key
from builder.replica.state import Copy, LastRefresh, ManifestState, Served, SourceState, State, iso
from builder.replica.trust import (
    check_count,
    check_digest,
    check_expiry,
    check_rollback,
    parse_document,
    parse_manifest,
    parse_renames,
    rollback_floor,
    verify_signature,
)
from builder.routes import RENAMES_FILE

__all__ = ["ReplicaClient", "default_client", "freeze", "thaw"]

_V2_NAMES = {c: f"v2/{c}" for c in NAMES}
#: a source that answered 404 for its manifest is not asked for one again for this long (seconds)
PLAIN_RECHECK = 600.0


class ReplicaClient(DirectReads, ReadAPI):
    """Thread-safe; several processes may share one cache folder.

    `ReplicaClient()` reads the environment; keyword arguments (the fields of `ReplicaConfig`, plus
    `cache_home`) override it, or pass a complete `ReplicaConfig`. `fetcher` replaces the HTTP transport
    (any `FetcherInterface`) and `clock` the time source (seconds since the epoch, as `time.time`).
    """

    def __init__(self, config: ReplicaConfig | None = None, /, *, fetcher: FetcherInterface | None = None,
                 clock: Callable[[], float] | None = None, **settings: Any):
        if config is None:
            config = ReplicaConfig.from_env(**settings)
        elif settings:
            config = config.with_(**settings)
        self.config = config
        self._clock = clock or time.time
        self._cache = DiskCache(config.cache_dir, config.lock_timeout)
        self._copies = Copies(self._cache, config.cache_ttl_seconds, config.base_path)
        self._fetcher = fetcher if fetcher is not None else HttpxFetcher(config.max_bytes)
        self._sites = [SiteSource("cdn" if i == 0 and config.primary_api_url else "mirror", url)
                       for i, url in enumerate(config.site_urls)]
        self._mem = self._copies.mem  # read without the lock on the warm path
        self._reasons = self._copies.reasons
        self._lock = threading.RLock()
        self._renames: tuple[float, dict[str, dict[str, str]]] | None = None  # (fresh until, table)
        self._followed: dict[str, dict[str, str]] = {}

    def get_model_reference(self, category: Any, overwrite_existing: bool = False) -> ReadOnlyRecords:
        """Model key -> record of `category` (read-only).

        Raises:
            SourceUnavailable: no source, the cache included, has it.
            CategoryError: `category` is not a category (a ValueError).
        """
        if not overwrite_existing and isinstance(category, str):  # the warm path, kept to a few lookups
            e = self._mem.get(_V2_NAMES.get(category, ""))  # (a str enum member hashes as its value)
            if e is not None and self._clock() < e.valid_until:
                return e.value
        return self._get("v2", category_of(category).name, overwrite_existing).value

    def get_all_model_references_or_none(self, overwrite_existing: bool = False
                                         ) -> Mapping[str, ReadOnlyRecords | None]:
        """Category -> records (None where no source has them) for all categories, in one refresh."""
        names = [_V2_NAMES[c] for c in NAMES]
        self._ensure(names, overwrite_existing)
        return MappingProxyType({c: (self._mem[n].value if n in self._mem else None)
                                 for c, n in zip(NAMES, names, strict=True)})

    def get_legacy(self, category: Any, overwrite_existing: bool = False) -> bytes:
        """The v1 (legacy format) document of `category`, as bytes: what `.../v1/{category}` serves.

        Raises:
            SourceUnavailable: no source, the cache included, has it.
            CategoryError: not a category, or one without a v1 format.
        """
        return self._get("v1", category_of(category, legacy=True).name, overwrite_existing).value

    def refresh(self, categories: Iterable[Any] | None = None) -> None:
        """Check the sources now (ignoring the TTL) for `categories` (default: all v2 categories)."""
        cats = NAMES if categories is None else [category_of(c).name for c in categories]
        self._ensure([_V2_NAMES[c] for c in cats], force=True)

    def source_info(self) -> dict[str, Any]:
        """Where the data came from and why: per category the source, URL, generation, commit, fetch
        time and fallback reason; the manifest; the health of each source; the last refresh. No network."""
        cfg = self.config
        return {"cache_dir": str(cfg.cache_dir), "cache_error": self._cache.error, "offline": cfg.offline,
                "config": cfg.info(), **self._cache.read_state().info(self._clock()),
                "renames_followed": {c: dict(t) for c, t in self._followed.items()},
                "old_client_cache": {n.split("/", 1)[1]: dict(v) for n, v in self._copies.old_client.items()},
                "this_process": {"requests": self._fetcher.requests, "body_bytes": self._fetcher.body_bytes}}

    def _renamed(self, category: str, key: str) -> str | None:
        new = self._renames_table().get(category, {}).get(key)
        if new is not None:
            self._followed.setdefault(category, {})[key] = new
        return new

    def _renames_table(self) -> dict[str, dict[str, str]]:
        """The site's renames table, asked for only when a key is missing, at most once per TTL; verified
        against the manifest when the source has one. Empty when no site answers (or offline)."""
        now = self._clock()
        if self._renames is not None and now < self._renames[0]:
            return self._renames[1]
        table: dict[str, dict[str, str]] = {}
        if not self.config.offline:
            try:
                with self._lock, self._cache.lock():
                    state, rnd = self._cache.read_state(), Round(now, False)
                    for src in self._sites:
                        try:
                            table = self._renames_from(src, state, rnd)
                            break
                        except SourceFailure:
                            continue
                    if rnd.dirty:
                        self._cache.write_state(state)
            except LockTimeout:
                pass  # no renames this time: the caller gets ModelNotFound, as for an unknown key
        self._renames = (now + self.config.cache_ttl_seconds, table)
        return table

    def _renames_from(self, src: SiteSource, state: State, rnd: Round) -> dict[str, dict[str, str]]:
        manifest = self._manifest(src, state, rnd)
        entry = None if manifest is None else manifest.entries.get(RENAMES_FILE)
        if manifest is not None and entry is None:
            raise ManifestError(f"the manifest lists no {RENAMES_FILE}")
        body = self._fetch(state.source(src.base, src.kind), src.url(RENAMES_FILE), self.config.timeout, rnd).body
        if entry is not None:
            check_digest(body, entry)
        return parse_renames(body)

    def close(self) -> None:
        """Close the fetcher's connections."""
        self._fetcher.close()

    # -- machinery -----------------------------------------------------------------------------

    def _fresh(self, name: str) -> Loaded | None:
        e = self._mem.get(name)
        return e if e is not None and self._clock() < e.valid_until else None

    def _fresh_value(self, name: str) -> Any | None:
        e = self._fresh(name)
        return None if e is None else e.value

    def _get(self, kind: str, cat: str, force: bool) -> Loaded:
        name = f"{kind}/{cat}"
        e = None if force else self._fresh(name)  # the warm path: no I/O, no lock
        if e is None:
            self._ensure([name], force)
            e = self._mem.get(name)
        if e is None:
            raise SourceUnavailable(name, self._reasons.get(name, []))
        return e

    def _ensure(self, names: list[str], force: bool) -> None:
        with self._lock:
            stale = names if force else [n for n in names if self._fresh(n) is None]
            if stale and self.config.offline:
                self._copies.from_cache(stale, self._clock(), "offline: reading the cache only")
            elif stale:
                self._refresh(stale, force)

    def _refresh(self, names: list[str], force: bool) -> None:
        if not force:
            # Lock-free first: copies another process confirmed within the TTL are adopted without
            # waiting for the lock (content-addressed copies make this safe), so readers of a warm cache
            # never queue behind a refresh that is waiting on the network.
            state, now = self._cache.read_state(), self._clock()
            names = [n for n in names if not self._copies.adopt_fresh(n, state, now)]
            if not names:
                return
        before = (self._fetcher.requests, self._fetcher.body_bytes)
        try:
            with self._cache.lock():
                state = self._cache.read_state()
                rnd = Round(self._clock(), force)
                for name in names:
                    self._resolve(name, state, rnd)
                requests = self._fetcher.requests - before[0]
                if requests:
                    state.last_refresh = LastRefresh(iso(rnd.now), requests,
                                                     self._fetcher.body_bytes - before[1], rnd.errors)
                    rnd.dirty = True
                if rnd.dirty:
                    self._cache.write_state(state)
                    self._cache.prune(state)
        except LockTimeout:
            # Another process has held the cache longer than lock_timeout (its refresh is stuck on slow
            # sources). Serve what the cache holds now rather than wait: copies are verified on read.
            reason = f"cache locked by another process for over {self.config.lock_timeout:g}s"
            self._copies.from_cache(names, self._clock(), reason)

    def _resolve(self, name: str, state: State, rnd: Round) -> None:
        # 1. another process (or this one) produced a fresh copy within the TTL: adopt it, no request
        if not rnd.force and self._copies.adopt_fresh(name, state, rnd.now):
            return
        errors: list[str] = []
        previous = self._copies.previous_count(name, state)
        # 2. the CDN, then the mirrors
        for src in self._sites:
            try:
                manifest = self._manifest(src, state, rnd)
            except SourceFailure as e:
                errors.append(f"{src.label}: manifest: {e}")
                continue
            try:
                if manifest is None:
                    return self._from_plain(name, src, state, rnd, previous, errors)
                return self._from_site(name, src, manifest, state, rnd, previous, errors)
            except SourceFailure as e:
                errors.append(f"{src.label}: {name.split('/')[1]}: {e}")
                self._failed(src.base, state.source(src.base, src.kind), e, rnd, whole_source=False)
        # 3. the legacy GitHub files
        if self.config.enable_github_fallback:
            try:
                return self._from_github(name, state, rnd, previous, errors)
            except SourceFailure as e:
                errors.append(f"github: {e}")
                self._failed(self.config.github_raw_url, state.source(self.config.github_raw_url, "github"), e,
                             rnd, whole_source=False)
        # 4. the last good copy on disk
        rnd.errors += [f"{name}: {e}" for e in errors]
        self._copies.last_good(name, state, rnd.now, errors, write=True)
        rnd.dirty = True

    def _failed(self, base: str, st: SourceState, e: Exception, rnd: Round, *, whole_source: bool) -> None:
        """Take the source out of this round and open its breaker, when the failure says the source is
        unhealthy: any manifest failure (`whole_source`), or a transport failure, 5xx or 429."""
        if base in rnd.failed or not (whole_source or (isinstance(e, FetchFailed) and e.unhealthy)):
            return
        rnd.failed[base] = e
        if isinstance(e, SourceSkipped):
            return  # the breaker is already open: a skip does not extend it
        cooldown = self.config.cooldown
        if isinstance(e, FetchFailed) and e.retry_after is not None:  # the server said when to come back
            cooldown = max(cooldown, e.retry_after)
        st.trip(rnd.now, cooldown, str(e))
        rnd.dirty = True

    # -- step 2: site sources

    def _manifest(self, src: SiteSource, state: State, rnd: Round) -> ManifestState | None:
        """The current manifest as `src` confirms it (None: `src` has none, a plain-API source): at most
        one request per round."""
        st = state.source(src.base, src.kind)
        self._gate(src.base, st, rnd, circuit=False)
        if src.base in rnd.manifests:
            return rnd.manifests[src.base]
        if st.no_manifest_until > rnd.now and not self.config.trusted_keys:
            rnd.manifests[src.base] = None
            return None
        cur, ttl = state.manifest, self.config.cache_ttl_seconds
        holds_current = cur is not None and st.manifest_sha == cur.sha256
        try:
            if holds_current and not rnd.force and st.checked_at + ttl > rnd.now:
                assert cur is not None
                result = cur  # confirmed within the TTL (by this process or another one)
            else:
                self._gate(src.base, st, rnd, circuit=True)
                result = self._check_manifest(src, st, state, rnd, cur if holds_current else None)
        except FetchFailed as e:
            if e.status != 404 or self.config.trusted_keys:  # a signed manifest is required: never plain
                self._failed(src.base, st, e, rnd, whole_source=True)
                raise
            st.no_manifest_until, st.manifest_sha, st.etag, st.last_modified = rnd.now + PLAIN_RECHECK, None, None, None
            st.succeeded(rnd.now)
            rnd.manifests[src.base] = None
            return None
        except SourceFailure as e:
            self._failed(src.base, st, e, rnd, whole_source=True)  # a source without a manifest is useless
            raise
        try:
            check_expiry(result.expires, rnd.now, signed=bool(self.config.trusted_keys))
        except SourceFailure as e:
            self._failed(src.base, st, e, rnd, whole_source=True)
            raise
        rnd.manifests[src.base] = result
        return result

    def _check_manifest(self, src: SiteSource, st: SourceState, state: State, rnd: Round,
                        current: ManifestState | None) -> ManifestState:
        cfg, now = self.config, rnd.now
        # our validators describe the manifest we hold: a 304 confirms it
        r = self._fetch(st, src.manifest_url, cfg.timeout, rnd, st.validators if current else None)
        if r.not_modified and current is not None:
            st.succeeded(now)
            st.checked_at = current.checked_at = now
            current.fresh_until = max(current.fresh_until, now + cfg.cache_ttl_seconds)
            return current
        m = parse_manifest(r.body)
        signature, signed_by = None, None
        if cfg.trusted_keys:
            try:
                signature = self._fetch(st, src.signature_url, cfg.timeout, rnd).body
            except FetchFailed as e:
                if e.status is None:
                    raise
                raise SignatureError(f"manifest signature: HTTP {e.status} (a signature by a trusted key is "
                                     "required)") from e
            signed_by = verify_signature(m.raw, signature, cfg.trusted_keys)
        signed = signed_by is not None
        check_expiry(m.expires, now, signed=signed)  # before anything is stored: a refused manifest leaves no trace
        check_rollback(m, state.generation, state.floor_until, now)
        keys = [document_key(f"{kind}/{c}") for c in NAMES for kind in ("v2", "v1")] + [RENAMES_FILE]
        self._cache.write_file("site/manifest.json", m.raw)
        if signature is not None:
            self._cache.write_file("site/manifest.json.sig", signature)
        state.floor_until = rollback_floor(m, now, signed=signed, previous_until=state.floor_until,
                                           new_generation=m.generation != state.generation)
        state.generation = m.generation
        state.manifest = ManifestState(
            m.sha256, m.generation, src.kind, src.manifest_url, fetched_at=now, checked_at=now,
            fresh_until=now + cfg.cache_ttl_seconds, source_commit=m.source_commit, built_at=m.built_at,
            signed_by=signed_by, entries={k: m.files[k] for k in keys if k in m.files}, expires=m.expires)
        v = r.validators
        st.etag, st.last_modified, st.manifest_sha, st.checked_at = v.etag, v.last_modified, m.sha256, now
        st.no_manifest_until = 0.0
        st.succeeded(now)
        return state.manifest

    def _from_site(self, name: str, src: SiteSource, manifest: ManifestState, state: State, rnd: Round,
                   previous: int | None, errors: list[str]) -> None:
        key = document_key(name)
        entry = manifest.entries.get(key)
        if entry is None:
            raise ManifestError(f"the manifest lists no {key}")
        copy = state.site.get(name)
        copy = copy if copy is not None and copy.sha256 == entry.sha256 else None
        loaded = None if copy is None else self._copies.held(name, entry.sha256)
        if loaded is None:  # changed (or never fetched, or damaged on disk): download it, and only it
            body = self._fetch(state.source(src.base, src.kind), src.url(key), self.config.timeout, rnd).body
            check_digest(body, entry)
            doc = parse_document(body)
            check_count(len(doc), previous, self.config.shrink_ratio)
            self._cache.write_copy("site", name, body)
            copy = state.site[name] = Copy(entry.sha256, len(doc), src.url(key), src.kind, rnd.now,
                                           bytes=len(body), generation=manifest.generation,
                                           source_commit=manifest.source_commit, check="manifest")
            loaded = load(name, body, entry.sha256, 0.0, doc)
        assert copy is not None
        if copy.generation != manifest.generation:  # the same bytes are still current
            copy.generation, copy.source_commit = manifest.generation, manifest.source_commit
        loaded.valid_until = manifest.checked_at + self.config.cache_ttl_seconds
        rnd.dirty = True
        self._copies.keep(name, loaded, state, Served(
            src.kind, rnd.now, manifest.checked_at, "; ".join(errors) or None, "site", entry.sha256, loaded.count,
            src.url(key), generation=manifest.generation, source_commit=manifest.source_commit,
            fetched_at=copy.fetched_at, check="manifest"))

_default: ReplicaClient | None = None
_default_lock = threading.Lock()


def default_client() -> ReplicaClient:
    """The process-wide client configured from the environment (like the existing library's singleton)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ReplicaClient()
        return _default
