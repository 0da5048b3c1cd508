"""The route table of a built site as it is on disk, for `hmr serve`: reloaded when `hmr build` swaps the
tree, with the per-file-version digests (ETags) and gzip bodies the server sends.

A table is only kept if the tree did not move while it was walked; a caller that gets an `OSError`
(the site folder between two trees) tries again.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import threading
from pathlib import Path

from builder.fs import walk_files
from builder.routes import MANIFEST_FILE, Route, route_map

__all__ = ["GZIP_CACHE_BYTES", "INDEX", "SiteIndex", "site_files"]

INDEX = "index.html"
#: compressed bodies kept (per file version), at most this many bytes in all
GZIP_CACHE_BYTES = 64 << 20


def site_files(root: Path) -> list[str]:
    """Relative paths of every file in the site directory `root`, sorted (symlinks included: the
    table refuses the ones that lead out of the site when it opens them)."""
    return sorted(walk_files(root, symlinks=True))


class SiteIndex:
    """The route table of the site on disk, reloaded when `hmr build` swaps the tree."""

    def __init__(self, site_dir: Path):
        self.site_dir = Path(site_dir).absolute()
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._routes: dict[str, Route] = {}
        self._digests: dict[tuple, str] = {}
        self._gzip: dict[tuple, bytes] = {}
        self._gzip_bytes = 0

    def _current_stamp(self) -> tuple:
        st = os.stat(self.site_dir)
        try:
            m = os.stat(self.site_dir / MANIFEST_FILE)
            mstamp: tuple = (m.st_ino, m.st_mtime_ns, m.st_size)
        except OSError:
            mstamp = ()
        # the writer renames a new tree into place: a new inode means a new table
        return (st.st_dev, st.st_ino, st.st_mtime_ns, mstamp)

    def routes(self) -> dict[str, Route]:
        """Object key -> route of the site as it is on disk now."""
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp:
                routes = route_map(site_files(self.site_dir), web=True)  # api/ and api/docs too
                if self._current_stamp() != stamp:  # swapped while walking: the caller tries again
                    raise FileNotFoundError(errno.ENOENT, "the site was swapped", str(self.site_dir))
                self._routes = routes
                self._stamp = stamp
                self._digests.clear()
                self._gzip.clear()
                self._gzip_bytes = 0
            return self._routes

    def lookup(self, key: str) -> Route | None:
        """The route of object key `key` ("dir/" asks for its index page), or None."""
        routes = self.routes()
        if (key == "" or key.endswith("/")) and key not in routes:
            key += INDEX  # directory index, as S3 website hosting and the nginx config do
        return routes.get(key)

    def path_of(self, route: Route) -> Path | None:
        """The file of `route`, or None if it resolves outside the site (a symlink escaping it) or to
        something other than a file.

        Raises:
            FileNotFoundError: the file is gone (the tree is being swapped: the caller tries again).
        """
        root = os.path.realpath(self.site_dir)
        real = os.path.realpath(self.site_dir / route.file)
        if os.path.commonpath([root, real]) != root:
            return None
        if os.path.isfile(real):
            return Path(real)
        if not os.path.lexists(real):  # checked after isfile: a swap between the two is a retry, not a 404
            raise FileNotFoundError(errno.ENOENT, "not in the site now", real)
        return None

    def gzipped(self, path: Path, st: os.stat_result, content: bytes) -> bytes:
        """`content` (the file at `path`, as `st` describes it) gzip-compressed, made once per version."""
        k = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._gzip.get(k)
        if hit is not None:
            return hit
        # mtime=0: the same file always compresses to the same bytes
        body = gzip.compress(content, compresslevel=6, mtime=0)
        with self._lock:
            self._gzip[k] = body
            self._gzip_bytes += len(body)
            while self._gzip_bytes > GZIP_CACHE_BYTES and self._gzip:
                self._gzip_bytes -= len(self._gzip.pop(next(iter(self._gzip))))
        return body

    def digest(self, path: Path, st: os.stat_result, content: bytes | None = None) -> str:
        """The sha256 of a file (the ETag), remembered while its inode, size and mtime stay."""
        k = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        sha = self._digests.get(k)
        if sha is None:
            sha = hashlib.sha256(content if content is not None else path.read_bytes()).hexdigest()
            self._digests[k] = sha
        return sha
