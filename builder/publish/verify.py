"""Reading a deployed site back through its CDN: does every live key serve the manifest's bytes?"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from builder.publish.pool import run_parallel
from builder.publish.site import Obj, Site

__all__ = ["Mismatch", "verify_url"]


@dataclass(frozen=True)
class Mismatch:
    """A key the CDN does not serve as the manifest says: `problem` says how (status, digest, request)."""

    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


def verify_url(site: Site, base_url: str, *, skip: Iterable[str] = (), workers: int = 8,
               timeout: float = 30.0) -> tuple[int, list[Mismatch]]:
    """GET every live key of `site` through `base_url` (the CDN in front of the target) and compare its
    sha256 with the manifest's. Returns (keys checked, mismatches by key). `skip`: keys the target
    could not hold. A failed request is a mismatch, not an exception."""
    import httpx

    skipped = set(skip)
    objs = [o for o in site.objects if o.key not in skipped]
    base = base_url.rstrip("/") + "/"
    # no-cache asks the CDN to revalidate with the origin rather than answer from its cache
    client = httpx.Client(timeout=timeout, follow_redirects=True, headers={"Cache-Control": "no-cache"},
                          limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers))

    def check(o: Obj) -> Mismatch | None:
        url = base + quote(o.key, safe="/")
        for attempt in (1, 2):
            try:
                r = client.get(url)
                break
            except httpx.HTTPError as e:
                if attempt == 2:
                    return Mismatch(o.key, f"request failed ({type(e).__name__})")
        if r.status_code != 200:
            return Mismatch(o.key, f"HTTP {r.status_code}")
        got = hashlib.sha256(r.content).hexdigest()
        if got != o.sha256:
            return Mismatch(o.key, f"sha256 {got} differs from the manifest's {o.sha256} ({len(r.content)} bytes)")
        return None

    try:
        found = run_parallel(objs, check, workers)
    finally:
        client.close()
    return len(objs), sorted((m for m in found if m is not None), key=lambda m: m.key)
