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
directory (or its manifest) changes under a running server; a read that the swap interrupts is
answered from the new tree.

JSON, HTML, CSS, JavaScript and XML go out gzip-compressed to a client that accepts it (`Vary:
Accept-Encoding`, a weak ETag for the compressed bytes, as nginx's gzip module sends), compressed once
per file version. As a server on an open port it stays up under bad clients: a malformed request
line is a 400, a request target over 64 KiB a 414, a protocol version other than HTTP/1.x a 505 (each
a JSON body, never an empty reply); at most `MAX_CONNECTIONS` connections are served at once (the
next get a 503), an idle connection is closed after `IDLE_TIMEOUT` seconds, and a client that
disconnects is never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from builder.errors import ConfigError
from builder.routes import (
    API,
    COMPRESSIBLE,
    CORS_HEADERS,
    CORS_METHODS,
    PREFLIGHT_HEADERS,
    Route,
    query_variant,
)
from builder.site.siteindex import SiteIndex, site_files

__all__ = ["LogEntry", "SiteHandler", "SiteIndex", "SiteServer", "make_server", "request_key", "site_files"]

NOT_FOUND = b'{"detail":"Not Found"}'
METHOD_NOT_ALLOWED = b'{"detail":"Method Not Allowed"}'
#: connections served at once (a thread each); more wait for none: they get a 503 and are closed
MAX_CONNECTIONS = 64
#: seconds a connection may sit idle (between requests, or mid-request) before it is closed
IDLE_TIMEOUT = 15.0
#: pauses (seconds) before each try of a read that a swap of the site tree interrupts
SWAP_RETRIES = (0.0, 0.01, 0.05, 0.2)
MIN_COMPRESS_BYTES = 256
SWAPPING = b'{"detail":"The site is being replaced: try again"}'
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 35\r\n"
        b"Retry-After: 1\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
        b'{"detail":"Too many connections"}\r\n')
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

    def setup(self) -> None:
        """The connection's socket timeout: an idle or stalled client is dropped after it."""
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)

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
        found = self._read(key, head=head and not self._wants_gzip())
        if found is None:
            self._not_found(head, key)
            return
        if isinstance(found, str):  # the tree kept moving under every try: say so, not 404
            self._send(503, {"Content-Type": "application/json", "Retry-After": "1"}, SWAPPING, head)
            return
        route, path, st, content = found
        etag = '"' + site.digest(path, st, content) + '"'
        headers = {
            "Content-Type": route.content_type,
            "ETag": etag,
            "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            "Cache-Control": route.cache_control,
        }
        if route.content_type.startswith(COMPRESSIBLE):
            headers["Vary"] = "Accept-Encoding"
            if content is not None and len(content) >= MIN_COMPRESS_BYTES and self._wants_gzip():
                # another representation, so another (weak) validator; If-None-Match compares weakly
                content = site.gzipped(path, st, content)
                headers.update({"Content-Encoding": "gzip", "ETag": "W/" + etag})
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        # RFC 9110 13.2.2: If-None-Match, when present, decides; If-Modified-Since is then ignored
        if (inm is not None and _etag_matches(inm, etag)) or (inm is None and ims and
                                                               _not_modified_since(ims, st.st_mtime)):
            self._send(304, headers, b"", head)
            return
        self._send(200, headers, content or b"", head, length=st.st_size if content is None else None)

    def _read(self, key: str | None, head: bool) -> tuple[Route, Path, os.stat_result, bytes | None] | str | None:
        """(route, file, its stat, its bytes unless `head`) of `key`, or None. A read that a swap of the
        site tree interrupts is tried again, on the new tree's table; "busy" if every try was."""
        site = self.server.site
        for pause in SWAP_RETRIES:
            time.sleep(pause)
            try:
                route = site.lookup(key) if key is not None else None
                if route is None:
                    return None
                path = site.path_of(route)
                if path is None:  # a symlink out of the site
                    return None
                st = path.stat()
                return route, path, st, None if head else path.read_bytes()
            except OSError:  # the site folder or the file is between two trees
                continue
        return "busy"

    def _wants_gzip(self) -> bool:
        """Whether the request's Accept-Encoding takes gzip (with a q-value above 0)."""
        for part in (self.headers.get("Accept-Encoding") or "").lower().split(","):
            coding, _, params = part.strip().partition(";")
            if coding.strip() in ("gzip", "x-gzip"):
                q = params.strip().removeprefix("q=")
                try:
                    return not params.strip() or float(q) > 0
                except ValueError:
                    return False
        return False

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line, and log the request in the server's `log`."""
        # a request refused before its line was parsed has no command or path yet
        self.server.record(LogEntry(getattr(self, "command", None) or "", getattr(self, "path", ""), code))
        super().send_response(code, message)

    def parse_request(self) -> bool:
        """The stdlib's parse, refusing HTTP/0.9 (a request line of two words): its answers have no
        status line or headers, which no client of this API expects and CORS cannot ride on."""
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not served")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A refused request (400, 414, 431, 505, ...): the old API's JSON error body, then close."""
        if getattr(self, "request_version", "") not in ("HTTP/1.0", "HTTP/1.1"):
            # the stdlib writes no status line for HTTP/0.9, which is also what an unparsable line leaves
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"detail": message or phrase}).encode()
        # the standard phrase on the status line: the message may quote what the client sent
        self.send_response(code)
        for k, v in {**CORS_HEADERS, "Content-Type": "application/json", "Connection": "close"}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        """The access log on stderr, unless the server is quiet."""
        if not self.server.quiet:
            super().log_message(format, *args)


class SiteServer(ThreadingHTTPServer):
    """ThreadingHTTPServer over a site directory; `log` keeps the latest requests for tests and checks."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, site_dir: Path, address: tuple[str, int], quiet: bool = True,
                 max_connections: int = MAX_CONNECTIONS, idle_timeout: float = IDLE_TIMEOUT):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.site = SiteIndex(site_dir)
        self.quiet = quiet
        self.log: deque[LogEntry] = deque(maxlen=100_000)
        self._log_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self.idle_timeout = idle_timeout
        super().__init__(address, SiteHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, unless `MAX_CONNECTIONS` are being served: then
        a 503 and close, so a flood of idle connections cannot grow the process without bound."""
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """The connection's thread; its slot is freed when it ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away is no error; anything else is a traceback, unless quiet."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError) or self.quiet:
            return
        super().handle_error(request, client_address)

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
