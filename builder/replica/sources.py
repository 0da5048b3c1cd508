"""The sources of the fallback chain, and what makes their answers trustworthy.

- `Http`: one pooled httpx client. Every failure (transport, timeout, HTTP status, oversize body)
  becomes `SourceFailed`, so no httpx exception ever reaches a caller (the existing client lets
  `ConnectError` and `ReadTimeout` escape, api.md §3.3). A request has a deadline for the whole
  body, not only per read, so a server that drips bytes cannot hold a refresh hostage.
- `SiteSource`: a built site (the CDN or a mirror) addressed by its `.../api` base.
- `parse_manifest` / `check_document`: the integrity checks (manifest shape, generation, signature,
  sha256 and size of every document, JSON shape, shrink protection).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from builder.replica.errors import SourceFailed

MANIFEST_KEY = "api/model_references/v2/manifest.json"
SIGNATURE_KEY = MANIFEST_KEY + ".sig"
USER_AGENT = "hmr-replica/0.1 (horde-model-reference-site)"
_HEX = frozenset("0123456789abcdef")


def v2_key(category: str) -> str:
    # the extensionless key: the path the old API's clients request, so CDN caches are shared with them
    return f"api/model_references/v2/{category}"


def v1_key(category: str) -> str:
    return f"api/model_references/v1/{category}"


@dataclass
class Fetched:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class Http:
    """A pooled HTTP client with hard deadlines and request/byte counters."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._clients: dict[bool, Any] = {}
        self.requests = 0
        self.body_bytes = 0

    def _get_client(self, https: bool) -> Any:
        # One client per scheme, made on first use: httpx costs ~0.1 s to import and loading the CA
        # bundle for TLS tens of milliseconds more, which a cache hit or a plain-http mirror never needs.
        client = self._clients.get(https)
        if client is None:
            import httpx

            client = self._clients[https] = httpx.Client(
                follow_redirects=True, headers={"User-Agent": USER_AGENT}, verify=https,
                limits=httpx.Limits(max_keepalive_connections=4))
        return client

    def get(self, url: str, timeout: float, headers: Mapping[str, str] | None = None) -> Fetched:
        """GET `url`; any status is returned. Raises SourceFailed for transport failures."""
        import httpx

        client = self._get_client(url.startswith("https:"))
        deadline = time.monotonic() + timeout
        self.requests += 1
        try:
            with client.stream("GET", url, headers=dict(headers or {}), timeout=httpx.Timeout(timeout)) as r:
                chunks: list[bytes] = []
                size = 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    self.body_bytes += len(chunk)
                    if size > self.max_bytes:
                        raise SourceFailed(f"response larger than {self.max_bytes} bytes", transport=True)
                    if time.monotonic() > deadline:
                        raise SourceFailed(f"timed out after {timeout:g}s (body still arriving)", transport=True)
                    chunks.append(chunk)
                return Fetched(r.status_code, r.headers, b"".join(chunks), str(r.url))
        except httpx.TimeoutException as e:
            raise SourceFailed(f"timed out after {timeout:g}s ({type(e).__name__})", transport=True) from None
        except httpx.ConnectError as e:
            raise SourceFailed(f"connection failed ({_short(e)})", transport=True) from None
        except httpx.RemoteProtocolError as e:
            # e.g. the peer closed before Content-Length bytes arrived: a truncated body
            raise SourceFailed(f"truncated or malformed response ({_short(e)})", transport=True) from None
        except httpx.DecodingError as e:
            raise SourceFailed(f"undecodable response body ({_short(e)})", transport=True) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as e:
            raise SourceFailed(f"{type(e).__name__}: {_short(e)}", transport=True) from None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def status_failure(r: Fetched) -> SourceFailed:
    """The failure a non-200/304 answer stands for. 5xx and 429 say the server is unhealthy (breaker)."""
    retry_after = None
    if r.status in (429, 503):
        try:
            retry_after = float(r.headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
    return SourceFailed(f"HTTP {r.status}", transport=r.status >= 500 or r.status == 429, retry_after=retry_after)


@dataclass(frozen=True)
class SiteSource:
    """A built site (CDN or mirror). `base` is the API base as the existing client takes it (`.../api`);
    the site root is the base without its `/api`, and a base without `/api` is taken as the root."""

    kind: str  # "cdn" or "mirror"
    base: str

    @property
    def root(self) -> str:
        return self.base[: -len("/api")] if self.base.endswith("/api") else self.base

    def url(self, key: str) -> str:
        return f"{self.root}/{key}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.base}"


# ---------------------------------------------------------------------------------------------------
# integrity


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    sha256: str
    generation: int
    source_commit: str | None
    built_at: str | None
    files: Mapping[str, Mapping[str, Any]]


def parse_manifest(raw: bytes) -> Manifest:
    """A manifest from its bytes; SourceFailed unless it has the shape `hmr build` writes."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SourceFailed(f"manifest is not JSON ({_what(raw)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise SourceFailed(f"manifest has no files table ({_what(raw)})")
    gen = doc.get("generation")
    if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
        raise SourceFailed("manifest generation is not a positive integer")
    for key, entry in doc["files"].items():
        if not (isinstance(entry, dict) and _is_sha(entry.get("sha256")) and isinstance(entry.get("bytes"), int)):
            raise SourceFailed(f"manifest entry {key!r} has no valid sha256/bytes")
    commit = doc.get("source_commit")
    built = doc.get("built_at")
    return Manifest(raw, hashlib.sha256(raw).hexdigest(), gen, commit if isinstance(commit, str) else None,
                    built if isinstance(built, str) else None, MappingProxyType(doc["files"]))


def _is_sha(v: object) -> bool:
    return isinstance(v, str) and len(v) == 64 and _HEX.issuperset(v)


def _what(raw: bytes) -> str:
    """A short description of a body that is not what was expected (an HTML captive portal, ...)."""
    head = raw[:200].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page"
    if not raw:
        return "empty body"
    return f"{len(raw)} bytes starting {raw[:24]!r}"


def verify_signature(manifest: bytes, signature: bytes, trusted_keys: tuple[str, ...]) -> str:
    """The id of the trusted key that signed `manifest`; SourceFailed otherwise."""
    from builder.signing import SignatureError, parse_public_key, verify

    try:
        return verify(manifest, signature, [parse_public_key(k) for k in trusted_keys])
    except SignatureError as e:
        raise SourceFailed(f"manifest signature refused: {e}") from None


def check_bytes(body: bytes, entry: Mapping[str, Any]) -> str:
    """sha256 of `body` after checking size and digest against the manifest entry."""
    if len(body) != entry["bytes"]:
        raise SourceFailed(f"size {len(body)} differs from the manifest's {entry['bytes']} (truncated or stale)")
    sha = hashlib.sha256(body).hexdigest()
    if sha != entry["sha256"]:
        raise SourceFailed(f"sha256 {sha[:12]}... differs from the manifest's {entry['sha256'][:12]}...")
    return sha


def parse_document(body: bytes) -> dict[str, Any]:
    """A category document (v2 records or a v1 legacy file): a JSON object of objects."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SourceFailed(f"not JSON ({_what(body)})") from None
    if not isinstance(doc, dict):
        raise SourceFailed(f"not a JSON object ({type(doc).__name__})")
    for key, rec in doc.items():
        if not isinstance(rec, dict):
            raise SourceFailed(f"record {key!r} is not an object")
    return doc


def check_shrink(count: int, previous: int | None, ratio: float) -> None:
    """Refuse a payload much smaller than the copy the client already has (an emptied or cut file)."""
    if previous is None or ratio <= 0 or previous == 0:
        return
    if count < previous * ratio:
        raise SourceFailed(f"{count} models where the cached copy has {previous} (shrank below "
                           f"{ratio:.0%}): refused")
