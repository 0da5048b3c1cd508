"""Transport only: GET a URL, conditionally, within a deadline and a size cap.

`FetcherInterface` is the seam between the client and the network. Its `fetch()` does what every
transport shares, once: it turns validators into conditional headers, counts requests and body bytes,
enforces the size cap, accepts 200 (and 304 to a conditional request), and turns anything else into
`FetchFailed(url, status)`, whatever the transport raised. A transport implements `_fetch()` only:
`HttpxFetcher` is the default, and the tests plug in an in-memory CDN.

It knows nothing of manifests, trust or the cache.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from builder.replica.errors import FetchError, FetchFailed

__all__ = ["USER_AGENT", "FetcherInterface", "HttpxFetcher", "Response", "Validators"]

USER_AGENT = "hmr-replica/0.1 (horde-model-reference-site)"
#: a server's Retry-After is honoured up to this many seconds
MAX_RETRY_AFTER = 3600.0


# Validators and Response are named tuples, not dataclasses: creating a dataclass costs the cold start
# about half a millisecond, a named tuple a fraction of that.
class Validators(NamedTuple):
    """What makes a request conditional: the ETag and Last-Modified of the copy the client holds."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        """The conditional request headers these validators stand for (none when both are unset)."""
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out

    def __bool__(self) -> bool:  # a tuple of two Nones is no validator at all
        return bool(self.etag or self.last_modified)


class Response(NamedTuple):
    """One answer. `headers` is looked up by lower-case name; `url` is the final URL (after redirects)."""

    status: int
    body: bytes
    url: str
    headers: Mapping[str, str]

    @property
    def not_modified(self) -> bool:
        """A 304: the copy the request's validators describe is still current (no body)."""
        return self.status == 304

    @property
    def validators(self) -> Validators:
        """The validators to send next time to ask for this representation conditionally."""
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))


class FetcherInterface(abc.ABC):
    """A transport for the replica client. Subclasses implement `_fetch`; callers use `fetch`.

    Attributes:
        max_bytes: an answer with a larger body is refused.
        requests: requests made by this fetcher (for `source_info()`).
        body_bytes: body bytes received by this fetcher.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.requests = 0
        self.body_bytes = 0

    @abc.abstractmethod
    def _fetch(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        """GET `url` with `headers`; return the answer whatever its status.

        Implementations should stop reading a body past `max_bytes` or past `timeout` seconds, and may
        raise anything: `fetch` turns it into `FetchFailed`.
        """

    def fetch(self, url: str, timeout: float, validators: Validators | None = None) -> Response:
        """GET `url`; conditionally when `validators` are given.

        Returns:
            A 200, or a 304 (`not_modified`) when the request was conditional.

        Raises:
            FetchFailed: for any other status (`status` set) and any transport failure (`status` None).
        """
        conditional = validators is not None and bool(validators)
        self.requests += 1
        try:
            r = self._fetch(url, validators.headers() if validators else {}, timeout)
        except FetchFailed:
            raise
        except FetchError as e:  # a transport of someone else's that already says what failed
            raise FetchFailed(str(e), e.url or url, e.status) from e
        except Exception as e:  # noqa: BLE001 - one error type whatever the transport raised
            raise FetchFailed(f"{type(e).__name__}: {_short(e)}", url) from e
        self.body_bytes += len(r.body)
        if len(r.body) > self.max_bytes:
            raise FetchFailed(f"response larger than {self.max_bytes} bytes", url)
        if r.status == 200 or (r.status == 304 and conditional):
            return r
        raise FetchFailed(f"HTTP {r.status}", url, r.status, _retry_after(r))

    def close(self) -> None:  # noqa: B027 - optional: a transport without connections has nothing to close
        """Release connections (the default does nothing)."""


def _decoder(encoding: str, url: str) -> Any:
    """A zlib decoder for the body's Content-Encoding (None: identity). Only gzip is asked for; one
    coding at most: stacked encodings (`gzip, gzip`) and unknown ones are refused."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise FetchFailed(f"stacked content encodings refused ({encoding})", url)
    if codings[0] not in ("gzip", "x-gzip"):
        raise FetchFailed(f"content encoding {codings[0]!r} refused (only gzip is accepted)", url)
    import zlib

    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def _retry_after(r: Response) -> float | None:
    if r.status not in (429, 503):
        return None
    try:
        return min(float(r.headers.get("retry-after", "")), MAX_RETRY_AFTER)
    except ValueError:  # absent, or an HTTP date: not worth parsing for a cooldown
        return None


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class HttpxFetcher(FetcherInterface):
    """The default transport: one pooled httpx client per scheme, made on first use.

    A request has a deadline for the whole body, not only per read, so a server that drips bytes
    cannot hold a refresh hostage; a body past `max_bytes` is cut off while it streams in. gzip is
    accepted (`Accept-Encoding: gzip`) and decoded here, incrementally and under the same cap on the
    decoded size; stacked or other encodings are refused.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        super().__init__(max_bytes)
        self._clients: dict[bool, Any] = {}

    def _client(self, https: bool) -> Any:
        # httpx costs ~0.1 s to import and loading the CA bundle for TLS tens of milliseconds more,
        # which a cache hit or a plain-http mirror never needs
        client = self._clients.get(https)
        if client is None:
            import httpx

            client = self._clients[https] = httpx.Client(
                follow_redirects=True, headers={"User-Agent": USER_AGENT}, verify=https,
                limits=httpx.Limits(max_keepalive_connections=4))
        return client

    def _fetch(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        import httpx

        client = self._client(url.startswith("https:"))
        deadline = time.monotonic() + timeout
        try:
            with client.stream("GET", url, headers={**headers, "Accept-Encoding": "gzip"},
                               timeout=httpx.Timeout(timeout)) as r:
                decoder = _decoder(r.headers.get("content-encoding", ""), url)
                chunks: list[bytes] = []
                size = wire = 0
                # raw bytes, decoded here: the size cap applies to the decoded body while it is decoded,
                # so a small gzip bomb cannot expand past max_bytes in memory
                for raw in r.iter_raw():
                    wire += len(raw)
                    chunk = raw if decoder is None else decoder.decompress(raw, self.max_bytes - size + 1)
                    size += len(chunk)
                    if size > self.max_bytes or (decoder is not None and decoder.unconsumed_tail):
                        self.body_bytes += size
                        raise FetchFailed(f"response larger than {self.max_bytes} bytes (decoded)", url)
                    if time.monotonic() > deadline:
                        raise FetchFailed(f"timed out after {timeout:g}s (body still arriving)", url)
                    chunks.append(chunk)
                if decoder is not None and wire:  # (a 304 has no body to decode)
                    if not decoder.eof:
                        raise FetchFailed("truncated gzip body", url)
                    chunks.append(decoder.flush())
                return Response(r.status_code, b"".join(chunks), str(r.url), r.headers)
        except httpx.TimeoutException as e:
            raise FetchFailed(f"timed out after {timeout:g}s ({type(e).__name__})", url) from None
        except httpx.ConnectError as e:
            raise FetchFailed(f"connection failed ({_short(e)})", url) from None
        except httpx.RemoteProtocolError as e:
            # e.g. the peer closed before Content-Length bytes arrived: a truncated body
            raise FetchFailed(f"truncated or malformed response ({_short(e)})", url) from None
        except httpx.DecodingError as e:
            raise FetchFailed(f"undecodable response body ({_short(e)})", url) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as e:
            raise FetchFailed(f"{type(e).__name__}: {_short(e)}", url) from None

    def close(self) -> None:
        """Close the pooled connections."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __del__(self) -> None:
        # a client dropped without close() (a short-lived worker script) must not leak its sockets
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - at interpreter exit httpx may be half torn down
            pass
