"""What a deploy needs from a store: the `Target` interface, what it reports (`Listed`, `Head`), and
the `RetryPolicy` the S3 store retries with.

Two stores implement it: S3-compatible object storage (`s3://BUCKET/PREFIX`, `builder.publish.s3`)
and a local directory (`file:///path`, `builder.publish.localdir`); `builder.publish.targets` opens
the one a URL names. This module imports neither of them. Keys are relative to the target's root
(the bucket prefix or the directory).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

__all__ = ["Head", "Listed", "RetryPolicy", "Target"]


@dataclass(frozen=True)
class Listed:
    """What a listing says of an object. `etag` is the S3 ETag without quotes (the MD5 of the bytes for
    a plain single-part upload, something else for multipart or KMS-encrypted objects); a local
    directory gives the sha256 itself."""

    size: int
    etag: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Head:
    """What a HEAD says of an object: the headers a deploy sets, and the sha256 kept in its metadata."""

    size: int
    content_type: str | None
    cache_control: str | None
    sha256: str | None


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter (the AWS recommendation) on throttling, 5xx and dropped
    connections: attempt n waits uniform(0, min(cap, base * 2**n)) seconds."""

    attempts: int = 6
    base: float = 0.25
    cap: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    #: how many retries happened (the summary reports them)
    retries: int = field(default=0, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def run(self, fn: Callable[[], T], retriable: Callable[[BaseException], bool]) -> T:
        """`fn()`, called again after a backoff while it raises what `retriable` accepts, at most
        `attempts` times in all; the last failure (or one not retriable) is raised as it is."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as e:
                if attempt == self.attempts - 1 or not retriable(e):
                    raise
                with self._lock:  # uploads run in threads
                    self.retries += 1
                self.sleep(random.uniform(0, min(self.cap, self.base * 2 ** attempt)))
        raise AssertionError("unreachable")


class Target:
    """A store a site is deployed to. Every method raises `PublishError` (a one-line message naming the
    key) on failure, or `ConfigError` when the credentials or settings are unusable."""

    #: the target as the user wrote it, without credentials: for messages
    url: str

    def open(self) -> None:
        """Check the store is reachable and the credentials work (a missing bucket is an error)."""
        raise NotImplementedError

    def list(self, under: str = "", exclude: str | None = None) -> dict[str, Listed]:
        """Every key under the folder `under` ("" = the root), except those under the top-level folder
        `exclude` (the snapshots, which grow with every generation and need not be listed)."""
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        """The bytes of the object `key`, or None when there is no such object."""
        raise NotImplementedError

    def head(self, key: str) -> Head | None:
        """The headers and sha256 metadata of the object `key`, or None when there is no such object."""
        raise NotImplementedError

    def put(self, key: str, data: bytes, content_type: str, cache_control: str, sha256: str,
            md5: str | None = None) -> None:
        """Write the object `key` in one piece, with its headers and its sha256 as metadata. `md5` (hex),
        when given, lets the store reject a body damaged on the way."""
        raise NotImplementedError

    def delete(self, keys: Iterable[str]) -> None:
        """Delete the objects `keys`; a key that is not there is no error."""
        raise NotImplementedError

    def probe_nesting(self, under: str | None) -> bool:
        """Whether the store can hold an object `k` and objects under `k/` at once (S3, R2 and B2 can;
        a store with a filesystem underneath, such as MinIO, rclone or a directory, cannot). `under` is
        an existing object's key to probe below (a failed probe writes nothing), or None."""
        raise NotImplementedError

    #: what the store is known to do without probing (None: probe when it matters)
    nests: bool | None = None

    def close(self) -> None:
        """Release connections (the target is not used afterwards)."""
