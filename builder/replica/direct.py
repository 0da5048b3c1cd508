"""The steps of the fallback chain that read a source document by document, without a manifest.

A plain-API site (one that answers 404 for its manifest: the old PRIMARY) is read as the old client
read it: one GET per document at the key the old API serves, conditional when the copy held came with
validators, checked for shape and shrink (`trust`) and reported unverified. The legacy GitHub files
are read the same way, then converted. `client.ReplicaClient` inherits these and decides when each
step runs; `Round` is the bookkeeping of one refresh.
"""

from __future__ import annotations

from builder.categories import BY_NAME
from builder.replica.cache import DiskCache
from builder.replica.config import ReplicaConfig
from builder.replica.copies import Copies
from builder.replica.errors import FetchFailed, SourceSkipped
from builder.replica.fetcher import FetcherInterface, Response, Validators
from builder.replica.sources import SiteSource, document_key, github_url
from builder.replica.state import Copy, ManifestState, Served, SourceState, State
from builder.replica.trust import check_count, parse_document

__all__ = ["DirectReads", "Round"]


class Round:
    """One refresh under the file lock: each source's manifest is checked at most once in it."""

    __slots__ = ("dirty", "errors", "failed", "force", "manifests", "now")

    def __init__(self, now: float, force: bool):
        self.now, self.force = now, force
        self.manifests: dict[str, ManifestState | None] = {}  # source base -> its manifest (None: plain API)
        self.failed: dict[str, Exception] = {}  # source base -> why it is out of this round
        self.dirty = False
        self.errors: list[str] = []



class DirectReads:
    """The parts of the client that read a source document by document, without a manifest: a
    plain-API site and the legacy GitHub files; and the gate and fetch every step shares."""

    config: ReplicaConfig
    _cache: DiskCache
    _copies: Copies
    _fetcher: FetcherInterface

    def _gate(self, base: str, st: SourceState, rnd: Round, *, circuit: bool) -> None:
        """Raise SourceSkipped when `base` failed earlier in this round or (`circuit`) its breaker is open."""
        if base in rnd.failed:
            raise SourceSkipped(f"{rnd.failed[base]} (not retried in this refresh)")
        if circuit and st.circuit_open(rnd.now):
            raise SourceSkipped(f"skipped: circuit open for {st.breaker_until - rnd.now:.1f}s more after: "
                                f"{st.last_error}")

    def _fetch(self, st: SourceState, url: str, timeout: float, rnd: Round,
               validators: Validators | None = None) -> Response:
        rnd.dirty = True
        try:
            r = self._fetcher.fetch(url, timeout, validators)
        except FetchFailed as e:
            if e.status is not None:
                st.last_status = e.status
            raise
        st.last_status = r.status
        return r

    # -- step 2, a site without a manifest

    def _from_plain(self, name: str, src: SiteSource, state: State, rnd: Round, previous: int | None,
                    errors: list[str]) -> None:
        """Document `name` from a source without a manifest, as the old PRIMARY serves it: one GET,
        conditional when the copy held came with validators; shape and shrink checks, no digest."""
        cfg, now = self.config, rnd.now
        url = src.url(document_key(name))
        st = state.source(src.base, src.kind)
        copy = state.site.get(name)
        copy = copy if copy is not None and copy.url == url else None
        r = self._fetch(st, url, cfg.timeout, rnd, copy.validators if copy else None)
        body = self._cache.read_copy("site", name, copy.sha256) if copy and r.not_modified else None
        doc = None
        if r.not_modified and body is None:  # our copy is gone or damaged: ask again without validators
            r = self._fetch(st, url, cfg.timeout, rnd)
        if body is None:
            body = r.body
            doc = parse_document(body)
            check_count(len(doc), previous, cfg.shrink_ratio)
            sha = self._cache.write_copy("site", name, body)
            v = r.validators
            copy = state.site[name] = Copy(sha, len(doc), url, src.kind, now, bytes=len(body), etag=v.etag,
                                           last_modified=v.last_modified, check="none")
        assert copy is not None
        st.succeeded(now)
        loaded = self._copies.held(name, copy.sha256, body, doc)
        assert loaded is not None
        loaded.valid_until = now + cfg.cache_ttl_seconds
        rnd.dirty = True
        self._copies.keep(name, loaded, state, Served(
            src.kind, now, now, "; ".join(errors) or None, "site", copy.sha256, loaded.count, url,
            fetched_at=copy.fetched_at, check="none"))

    # -- step 3: GitHub

    def _from_github(self, name: str, state: State, rnd: Round, previous: int | None, errors: list[str]) -> None:
        """The legacy GitHub file, pinned: at the source commit of the last good manifest when there is
        one, so the fallback serves the version the site last published, never a mix of the site's
        generation and a newer branch head. A repository that does not hold that commit (404: the
        site's data lives elsewhere) is read at its branch head, and `fallback_reason` says so."""
        cfg = self.config
        commit = state.manifest.source_commit if state.manifest is not None else None
        if commit:
            try:
                return self._github_at(name, state, rnd, previous, errors, commit)
            except FetchFailed as e:
                if e.status != 404:
                    raise
                errors = [*errors, f"github: {commit[:12]} is not in the legacy repository (HTTP 404): "
                                   "read at the branch head"]
        st = state.source(cfg.github_raw_url, "github")
        self._gate(cfg.github_raw_url, st, rnd, circuit=True)
        return self._github_at(name, state, rnd, previous, errors, None)

    def _github_at(self, name: str, state: State, rnd: Round, previous: int | None, errors: list[str],
                   commit: str | None) -> None:
        cfg, now = self.config, rnd.now
        url = github_url(cfg, name, commit)
        if url is None:
            raise SourceSkipped(f"{name.split('/')[1]} has no legacy GitHub file")
        st = state.source(cfg.github_raw_url, "github")
        self._gate(cfg.github_raw_url, st, rnd, circuit=commit is not None)
        copy = state.github.get(name)
        copy = copy if copy is not None and copy.url == url else None
        r = self._fetch(st, url, cfg.github_request_timeout, rnd, copy.validators if copy else None)
        body = self._cache.read_copy("github", name, copy.sha256) if copy and r.not_modified else None
        if r.not_modified and body is None:  # our copy is gone or damaged: ask again without validators
            r = self._fetch(st, url, cfg.github_request_timeout, rnd)
        if body is None:
            from builder.replica.convert import v2_from_legacy  # the GitHub fallback only: not on every start

            kind, cat = name.split("/", 1)
            body = v2_from_legacy(BY_NAME[cat], r.body) if kind == "v2" else r.body
            count = len(parse_document(body))
            check_count(count, previous, cfg.shrink_ratio, what=url.rsplit("/", 1)[1])
            sha = self._cache.write_copy("github", name, body)
            v = r.validators
            copy = state.github[name] = Copy(sha, count, url, "github", now, etag=v.etag, last_modified=v.last_modified,
                                             source_commit=commit)
        assert copy is not None
        st.succeeded(now)
        loaded = self._copies.held(name, copy.sha256, body, slot="github")
        assert loaded is not None
        loaded.valid_until = now + cfg.cache_ttl_seconds
        rnd.dirty = True
        self._copies.keep(name, loaded, state, Served(
            "github", now, now, "; ".join(errors) or None, "github", copy.sha256, loaded.count, url,
            fetched_at=copy.fetched_at, source_commit=commit))

