"""`hmr serve`: a preview HTTP server for a built site, answering like the CDN will.

It serves the route table and nothing else: a request path is percent-decoded and looked up as an
object key; a file is only ever opened through the table (built from walking the site directory),
never by joining the request path onto the directory, so `..`, encoded dots and absolute paths have
nothing to resolve against. Symlinks inside the site that point outside it are refused as well.

Responses carry the route's Content-Type and Cache-Control, a strong ETag (the quoted sha256 of
the bytes, the same digest the manifest lists) and Last-Modified (the file's mtime, which the build
keeps for unchanged files); If-None-Match and If-Modified-Since get 304. Anything else is the old
API's JSON 404, except that a browser (`Accept: text/html`) asking for a page outside `api/` gets
an HTML 404 page (`templates/404.html`) with the site's navigation. Every response carries the route
table's CORS headers (`Access-Control-Allow-Origin: *`, as GitHub raw sends), and OPTIONS answers a
CORS preflight. `hmr build` swaps the site directory atomically, so the table is reloaded when the
directory (or its manifest) changes under a running server.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from builder.errors import ConfigError
from builder.fs import walk_files
from builder.routes import (
    API,
    CORS_HEADERS,
    CORS_METHODS,
    MANIFEST_FILE,
    PREFLIGHT_HEADERS,
    Route,
    query_variant,
    route_map,
)

__all__ = ["LogEntry", "SiteHandler", "SiteIndex", "SiteServer", "make_server", "request_key", "site_files"]

NOT_FOUND = b'{"detail":"Not Found"}'
METHOD_NOT_ALLOWED = b'{"detail":"Method Not Allowed"}'
INDEX = "index.html"
#: the page a browser gets for a path outside the API that names nothing
NOT_FOUND_TEMPLATE = "404.html"


def wants_html_404(key: str | None, accept: str | None) -> bool:
    """Whether a miss on `key` gets the HTML 404 page: a browser (its Accept names text/html) asking
    for something outside `api/`, where the old API's clients expect its JSON answer."""
    if not accept or "text/html" not in accept.lower():
        return False
    return key is None or not (key == API or key.startswith(API + "/"))


@cache
def _not_found_template() -> Any:
    # no bytecode cache: a preview server writes nothing but its answers
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("builder.site", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(NOT_FOUND_TEMPLATE)


def not_found_page(path: str) -> bytes:
    """The HTML 404 page for the request path `path` (jinja2, imported on the first miss only)."""
    from builder.site.html import nav_html

    return _not_found_template().render(root="/", nav=nav_html("/"), path=path).encode("utf-8")


@dataclass(frozen=True)
class LogEntry:
    """One answered request, as the server's log keeps it."""

    method: str
    path: str
    status: int


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
                self._routes = route_map(site_files(self.site_dir), web=True)
                self._stamp = stamp
                self._digests.clear()
            return self._routes

    def lookup(self, key: str) -> Route | None:
        """The route of object key `key` ("dir/" asks for its index page), or None."""
        routes = self.routes()
        if (key == "" or key.endswith("/")) and key not in routes:
            key += INDEX  # directory index, as S3 website hosting and the nginx config do
        return routes.get(key)

    def path_of(self, route: Route) -> Path | None:
        """The file of `route`, or None if it resolves outside the site (a symlink escaping it)."""
        root = os.path.realpath(self.site_dir)
        real = os.path.realpath(self.site_dir / route.file)
        if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
            return None
        return Path(real)

    def digest(self, path: Path, st: os.stat_result, content: bytes | None = None) -> str:
        """The sha256 of a file (the ETag), remembered while its inode, size and mtime stay."""
        k = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        sha = self._digests.get(k)
        if sha is None:
            sha = hashlib.sha256(content if content is not None else path.read_bytes()).hexdigest()
            self._digests[k] = sha
        return sha


def request_key(raw_path: str) -> str | None:
    """The object key a request target names, or None if it cannot name one."""
    if raw_path.startswith(("http://", "https://")):  # absolute-form request target
        raw_path = urlsplit(raw_path).path
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return None
    try:
        key = unquote(path[1:], errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in key or "\\" in key:
        return None
    return key


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]  # If-None-Match uses the weak comparison
        if tag == etag:
            return True
    return False


def _not_modified_since(header: str, mtime: float) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since is None or since.tzinfo is None:
        return False
    return int(mtime) <= since.timestamp()


class SiteHandler(BaseHTTPRequestHandler):
    """Answers GET and HEAD from the route table; any other method gets 405."""

    server: SiteServer
    protocol_version = "HTTP/1.1"
    server_version = "hmr-serve"
    sys_version = ""
    # headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK stalls
    # every response by ~40 ms
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        """Answer a GET."""
        self._serve(head=False)

    def do_HEAD(self) -> None:
        """Answer a HEAD (the GET's headers, no body)."""
        self._serve(head=True)

    def do_OPTIONS(self) -> None:
        """Answer a CORS preflight (any key: the GET that follows gets the 404 if there is none)."""
        self._send(204, {**PREFLIGHT_HEADERS, "Allow": CORS_METHODS}, b"", head=True)

    def _refuse(self) -> None:
        self._send(405, {"Content-Type": "application/json", "Allow": CORS_METHODS}, METHOD_NOT_ALLOWED, head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool, length: int | None = None) -> None:
        self.send_response(status)
        for k, v in {**CORS_HEADERS, **headers}.items():
            self.send_header(k, v)
        if status not in (204, 304):
            # a HEAD answer announces the length the GET would have
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head and status not in (204, 304):
            self.wfile.write(body)

    def _not_found(self, head: bool, key: str | None = None) -> None:
        if wants_html_404(key, self.headers.get("Accept")):
            page = not_found_page(self.path.split("?", 1)[0])
            self._send(404, {"Content-Type": "text/html; charset=utf-8", "Vary": "Accept"}, page, head)
            return
        self._send(404, {"Content-Type": "application/json"}, NOT_FOUND, head)

    def _serve(self, head: bool) -> None:
        site = self.server.site
        key = request_key(self.path)
        if key is not None and "?" in self.path:
            # the old API's query variants (v1/text_generation?include_group=true) are separate objects
            variant = query_variant(key, urlsplit(self.path).query)
            if variant is not None and site.lookup(variant) is not None:
                key = variant
        route = site.lookup(key) if key is not None else None
        path = site.path_of(route) if route is not None else None
        if route is None or path is None:
            self._not_found(head, key)
            return
        try:
            st = path.stat()
            content = None if head else path.read_bytes()
        except OSError:  # the tree was swapped between lookup and read
            self._not_found(head)
            return
        etag = '"' + site.digest(path, st, content) + '"'
        headers = {
            "Content-Type": route.content_type,
            "ETag": etag,
            "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            "Cache-Control": route.cache_control,
        }
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        # RFC 9110 13.2.2: If-None-Match, when present, decides; If-Modified-Since is then ignored
        if (inm is not None and _etag_matches(inm, etag)) or (inm is None and ims and
                                                               _not_modified_since(ims, st.st_mtime)):
            self._send(304, headers, b"", head)
            return
        self._send(200, headers, content or b"", head, length=st.st_size if content is None else None)

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line, and log the request in the server's `log`."""
        self.server.record(LogEntry(self.command or "", self.path, code))
        super().send_response(code, message)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        """The access log on stderr, unless the server is quiet."""
        if not self.server.quiet:
            super().log_message(format, *args)


class SiteServer(ThreadingHTTPServer):
    """ThreadingHTTPServer over a site directory; `log` keeps the latest requests for tests and checks."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, site_dir: Path, address: tuple[str, int], quiet: bool = True):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.site = SiteIndex(site_dir)
        self.quiet = quiet
        self.log: deque[LogEntry] = deque(maxlen=100_000)
        self._log_lock = threading.Lock()
        super().__init__(address, SiteHandler)

    def record(self, entry: LogEntry) -> None:
        """Append one answered request to `log`."""
        with self._log_lock:
            self.log.append(entry)

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"


def make_server(site_dir: Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = True) -> SiteServer:
    """A server for `site_dir`, bound but not yet serving: call `serve_forever()` (in a thread, in tests).

    Port 0 picks a free port; read it back from `server.server_address[1]`.

    Raises:
        FileNotFoundError: `site_dir` is not a directory.
        ConfigError: the port is in use, or needs privileges this process lacks.
    """
    site_dir = Path(site_dir)
    if not site_dir.is_dir():
        raise FileNotFoundError(2, "no built site here (run `hmr build` first)", str(site_dir))
    try:
        return SiteServer(site_dir, (host, port), quiet=quiet)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is in use (pass --port N)") from None
        if e.errno == errno.EACCES:
            raise ConfigError(f"port {port} needs privileges (pass --port N, e.g. 8000)") from None
        raise
