"""An in-memory CDN for the replica client tests: a `FetcherInterface` that serves published sites and the
legacy GitHub files from memory and records every fetch (after python-tuf's RepositorySimulator).

    sim = CdnSimulator()
    sim.publish_site(CDN, site_files)            # every object key of a built site, as the route table maps it
    sim.publish_files(GITHUB, github_files())    # the raw GitHub layout
    client = ReplicaClient(env={}, primary_api_url=CDN + "/api", fetcher=sim, clock=clock, ...)
    sim.update_document(CDN, "image_generation", records)   # a rebuild that changes one category
    sim.tamper(url, fn) / sim.fail(url, 503) / sim.fail(url, transport="timeout")
    assert sim.log() == [("cdn", MANIFEST_FILE, 304)]

Hosts answer like nginx and raw.githubusercontent.com do: a strong ETag per representation and 304 to
a matching If-None-Match; 404 for anything not published. Nothing sleeps: a "timeout" fails at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.replica.errors import FetchFailed
from builder.replica.fetcher import FetcherInterface, Response
from builder.routes import MANIFEST_FILE, SIGNATURE_FILE, route_map, v2_file, v2_key
from builder.signing import sign

CDN = "https://cdn.test"
MIRROR = "https://mirror.test"
GITHUB = "https://raw.githubusercontent.com"
LABELS = {CDN: "cdn", MIRROR: "mirror", GITHUB: "github"}


@dataclass(frozen=True)
class Fetch:
    """One recorded fetch: `status` None is a transport failure; `conditional` says validators were sent."""

    host: str
    key: str
    status: int | None
    conditional: bool


@dataclass
class Fault:
    """What a URL answers instead of its published bytes: a status, a transport failure, or a body
    transformed on the way out (which loses the validators, as another representation would)."""

    status: int | None = None
    transport: str | None = None  # "timeout", "refused" or "reset"
    transform: Callable[[bytes], bytes] | None = None
    retry_after: str | None = None


class Clock:
    """A clock the test moves: `client = ReplicaClient(..., clock=clock)`, then `clock.advance(61)`."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def read_site(site: Path) -> dict[str, bytes]:
    """Every object key of the built site in `site` -> its bytes (extensionless keys and v1 aliases too)."""
    files = {p.relative_to(site).as_posix(): p for p in site.rglob("*") if p.is_file()}
    data = {rel: p.read_bytes() for rel, p in files.items()}
    return {key: data[r.file] for key, r in route_map(files).items()}


class CdnSimulator(FetcherInterface):
    """Hosts (a root URL -> object key -> bytes), faults per URL, and `fetches`, the record of every call."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        super().__init__(max_bytes)
        self.hosts: dict[str, dict[str, bytes]] = {}
        self.faults: dict[str, Fault] = {}
        self.fetches: list[Fetch] = []
        self.signing_keys: dict[str, Ed25519PrivateKey] = {}

    # -- publishing ----------------------------------------------------------------------------------

    def publish_site(self, root: str, files: Mapping[str, bytes], key: Ed25519PrivateKey | None = None) -> None:
        """Serve a built site (`read_site`) at `root`; with `key`, sign its manifest (and every later one)."""
        self.hosts[root] = dict(files)
        if key is not None:
            self.signing_keys[root] = key
            self._sign(root)

    def publish_files(self, root: str, files: Mapping[str, bytes]) -> None:
        """Serve `files` (path under `root`, without the leading "/") as they are."""
        self.hosts[root] = {k.lstrip("/"): v for k, v in files.items()}

    def manifest(self, root: str = CDN) -> dict[str, Any]:
        """The manifest `root` serves, parsed."""
        return orjson.loads(self.hosts[root][MANIFEST_FILE])  # type: ignore[no-any-return]

    def document(self, category: str, root: str = CDN) -> dict[str, Any]:
        """The v2 records of `category` that `root` serves, parsed."""
        return orjson.loads(self.hosts[root][v2_key(category)])  # type: ignore[no-any-return]

    def update_document(self, root: str, category: str, records: Mapping[str, Any], *, bump: int = 1) -> None:
        """A rebuild that changes one v2 category: new bytes at both its keys, the manifest's entries
        and generation updated consistently (and re-signed)."""
        body = orjson.dumps(records)
        entry = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
        self.edit_manifest(root, lambda m: m["files"].update({v2_key(category): entry, v2_file(category): entry}),
                           bump=bump)
        self.hosts[root][v2_key(category)] = self.hosts[root][v2_file(category)] = body

    def edit_manifest(self, root: str, change: Callable[[dict[str, Any]], object], *, bump: int = 1) -> None:
        """Apply `change` to the manifest of `root` (in place), add `bump` to its generation, re-sign."""
        doc = self.manifest(root)
        change(doc)
        doc["generation"] += bump
        self.hosts[root][MANIFEST_FILE] = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        self._sign(root)

    def _sign(self, root: str) -> None:
        key = self.signing_keys.get(root)
        if key is not None:
            self.hosts[root][SIGNATURE_FILE] = sign(self.hosts[root][MANIFEST_FILE], key)

    # -- faults --------------------------------------------------------------------------------------

    def fail(self, url: str, status: int | None = None, *, transport: str | None = None,
             retry_after: str | None = None) -> None:
        """Make `url` answer `status`, or fail in transport ("timeout", "refused", "reset")."""
        self.faults[url] = Fault(status=status, transport=transport, retry_after=retry_after)

    def tamper(self, url: str, transform: Callable[[bytes], bytes] | bytes) -> None:
        """Serve `transform(bytes)` (or the given bytes) at `url` instead of what is published."""
        fn = transform if callable(transform) else (lambda _body, b=transform: b)
        self.faults[url] = Fault(transform=fn)

    def heal(self, url: str | None = None) -> None:
        """Remove the fault of `url` (or every fault)."""
        if url is None:
            self.faults.clear()
        else:
            self.faults.pop(url, None)

    # -- what was fetched ----------------------------------------------------------------------------

    def log(self) -> list[tuple[str, str, int | None]]:
        """(host label, key, status) of every fetch since the last `clear()`; a 304 means conditional."""
        return [(f.host, f.key, f.status) for f in self.fetches]

    def clear(self) -> None:
        """Forget the fetches made so far."""
        self.fetches.clear()

    # -- the transport -------------------------------------------------------------------------------

    def _fetch(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        root = next((r for r in self.hosts if url.startswith(r + "/")), None)
        host = LABELS.get(root or "", root or url)
        key = url[len(root) + 1:] if root else url
        fault = self.faults.get(url)
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers

        def answer(status: int | None, body: bytes = b"", extra: dict[str, str] | None = None) -> Response:
            self.fetches.append(Fetch(host, key, status, conditional))
            return Response(status or 0, body, url, extra or {})

        if fault is not None and fault.transport is not None:
            self.fetches.append(Fetch(host, key, None, conditional))
            if fault.transport == "timeout":
                raise FetchFailed(f"timed out after {timeout:g}s (simulated)", url)
            if fault.transport == "refused":
                raise ConnectionRefusedError(111, "Connection refused")  # a raw error: fetch() must wrap it
            raise ConnectionResetError(104, "Connection reset by peer")
        if fault is not None and fault.status is not None:
            extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
            return answer(fault.status, orjson.dumps({"detail": f"injected {fault.status}"}), extra)
        body = None if root is None else self.hosts[root].get(key)
        if body is None:
            return answer(404, b'{"detail":"Not Found"}')
        if fault is not None and fault.transform is not None:
            return answer(200, fault.transform(body))
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if headers.get("If-None-Match") == etag:
            return answer(304, b"", {"etag": etag})
        return answer(200, body, {"etag": etag})
