"""Helpers of the end-to-end replica client tests (tests/replica/); their fixtures are in
tests/replica/conftest.py, and the in-memory CDN most tests use is tests/replica/simulator.py.

- `FaultServer`: a small HTTP server of our own in front of an origin (nginx, or a static file map)
  that passes requests through or injects a fault per path: hang, any status, a truncated body, a
  captive-portal HTML page, an empty `{}`, flipped bytes (sha256 mismatch), replaced or transformed
  bodies (lower generation, tampered manifest), or a dropped connection. It logs every request.
- `files_origin`: a static origin with ETag/304, used as the GitHub raw server
  (`/{owner}/{name}/refs/heads/{branch}/{file}`) over the corpus legacy files.
- `MutableSite`: a copy of the corpus data, built with `builder.site.build.build` and served by its
  own nginx, that a test may edit and rebuild.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from builder import routes
from tests.helpers import LEGACY_CURRENT
from tests.site_support import Nginx

V2 = "/" + routes.V2
MANIFEST_PATH = "/" + routes.MANIFEST_FILE
SIG_PATH = MANIFEST_PATH + ".sig"
IMAGE_REPO = "/Haidra-Org/AI-Horde-image-model-reference/refs/heads/main"
TEXT_REPO = "/Haidra-Org/AI-Horde-text-model-reference/refs/heads/main"
CAPTIVE_PORTAL = (b"<!DOCTYPE html><html><head><title>Sign in to Hotel WiFi</title></head>"
                  b"<body><form>Accept the terms to continue</form></body></html>")

Origin = Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes]]


def proxy_origin(port: int) -> Origin:
    """Forward to 127.0.0.1:port (a new connection per request: simple and enough for tests)."""

    def origin(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() in ("if-none-match", "if-modified-since")}
            conn.request("GET", path, headers=fwd)
            r = conn.getresponse()
            body = r.read()
            keep = ("content-type", "etag", "last-modified", "cache-control", "retry-after")
            return r.status, {k: v for k, v in r.getheaders() if k.lower() in keep}, body
        finally:
            conn.close()

    return origin


def files_origin(files: dict[str, bytes]) -> Origin:
    """Serve `files` (request path -> bytes) with a strong ETag and 304, like raw.githubusercontent.com."""

    def origin(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        body = files.get(path)
        if body is None:
            return 404, {"Content-Type": "text/plain"}, b"404: Not Found"
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        inm = {k.lower(): v for k, v in headers.items()}.get("if-none-match")
        if inm == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Content-Type": "text/plain; charset=utf-8"}, body

    return origin


def github_files(legacy_dir: Path = LEGACY_CURRENT, prefix: str = "") -> dict[str, bytes]:
    """The legacy files at the raw GitHub layout: image repo files and the text repo's."""
    out = {}
    for f in sorted(legacy_dir.iterdir()):
        if f.name == "SOURCE":
            continue
        repo = TEXT_REPO if f.name in ("models.csv", "db.json", "defaults.json", "generation_params.json") \
            else IMAGE_REPO
        out[f"{prefix}{repo}/{f.name}"] = f.read_bytes()
    return out


@dataclass
class Logged:
    path: str
    status: int
    body_bytes: int
    fault: str | None


class FaultServer:
    """An HTTP server in front of `origin` that injects faults per request path (see the module doc).

    A fault is: "hang" (no answer for `hang_seconds`, then the connection is closed), "drip" (a body
    sent one byte at a time for `hang_seconds`), "drop" (close
    without answering), "truncate" (full Content-Length, half the body), "html", "empty", "corrupt"
    (one byte flipped: same size, other sha256), an int status, bytes (a 200 with that body), or a
    callable transforming the origin's body. A changed body loses the origin's validators (ETag,
    Last-Modified), as a different representation would.
    """

    def __init__(self, origin: Origin, hang_seconds: float = 3.0):
        self.origin = origin
        self.hang_seconds = hang_seconds
        self.faults: dict[str, Any] = {}
        #: a Retry-After header on injected 429/503 answers (None: none)
        self.retry_after: str | None = None
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                server._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.api = self.base + "/api"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_to(self, path: str) -> list[Logged]:
        with self._lock:
            return [e for e in self.log if e.path == path]

    def clear(self) -> None:
        with self._lock:
            self.log.clear()

    def _record(self, path: str, status: int, n: int, fault: str | None) -> None:
        with self._lock:
            self.log.append(Logged(path, status, n, fault))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        fault = self.faults.get(path)
        label = None if fault is None else (fault if isinstance(fault, str | int) else type(fault).__name__)
        if fault == "hang":
            self._record(path, 0, 0, "hang")
            time.sleep(self.hang_seconds)
            h.close_connection = True
            return
        if fault == "drip":  # a full Content-Length, then one byte every 50 ms: no read ever times out
            h.send_response(200)
            h.send_header("Content-Length", "100000")
            h.end_headers()
            deadline = time.monotonic() + self.hang_seconds
            try:
                while time.monotonic() < deadline:
                    h.wfile.write(b" ")
                    h.wfile.flush()
                    time.sleep(0.05)
            except OSError:  # the client gave up: what the test wants
                pass
            h.close_connection = True
            self._record(path, 200, 0, "drip")
            return
        if fault == "drop":
            self._record(path, 0, 0, "drop")
            h.close_connection = True
            return
        if isinstance(fault, int):
            body = json.dumps({"detail": f"injected {fault}"}).encode()
            headers = {"Content-Type": "application/json"}
            if self.retry_after is not None and fault in (429, 503):
                headers["Retry-After"] = self.retry_after
            self._send(h, fault, headers, body, path, label)
            return
        if fault == "html":
            self._send(h, 200, {"Content-Type": "text/html"}, CAPTIVE_PORTAL, path, label)
            return
        if fault == "empty":
            self._send(h, 200, {"Content-Type": "application/json"}, b"{}", path, label)
            return
        if isinstance(fault, bytes):
            self._send(h, 200, {"Content-Type": "application/octet-stream"}, fault, path, label)
            return
        request_headers = dict(h.headers.items())
        if fault is not None:  # a fault changes the body: ask the origin for the full one, not a 304
            request_headers = {k: v for k, v in request_headers.items()
                               if k.lower() not in ("if-none-match", "if-modified-since")}
        status, headers, body = self.origin(path, request_headers)
        if fault is None or status != 200:
            self._send(h, status, headers, body, path, label)
            return
        headers = {k: v for k, v in headers.items() if k.lower() not in ("etag", "last-modified")}
        if fault == "truncate":
            h.send_response(200)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            self._record(path, 200, len(body) // 2, label)
            return
        if fault == "corrupt":
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
        elif callable(fault):
            body = fault(body)
        self._send(h, 200, headers, body, path, label)

    def _send(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes, path: str,
              label: str | None) -> None:
        h.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)) if status != 304 else "0")
        h.end_headers()
        if status != 304:
            h.wfile.write(body)
        self._record(path, status, 0 if status == 304 else len(body), label)


def dead_url() -> str:
    """An API base on a loopback port where nothing listens: connection refused."""
    from tests.site_support import free_port

    return f"http://127.0.0.1:{free_port()}/api"


# ---------------------------------------------------------------------------------------------------
# the cache on disk


def cache_root(base: Path) -> Path:
    return base / "horde_model_reference" / "replica"


def assert_cache_sound(base: Path) -> dict:
    """Every copy state.json names exists with that sha256, nothing else (no temp file, no orphan)."""
    root = cache_root(base)
    state = json.loads((root / "state.json").read_bytes())
    named = set()
    for slot in ("site", "github"):
        for name, meta in state[slot].items():
            rel = f"{slot}/{name}.{meta['sha256'][:16]}.json"
            data = (root / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == meta["sha256"], rel
            json.loads(data)
            named.add(rel)
    if state.get("manifest"):
        m = (root / "site" / "manifest.json").read_bytes()
        assert hashlib.sha256(m).hexdigest() == state["manifest"]["sha256"]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    extra = present - named - {"state.json", ".lock", "site/manifest.json", "site/manifest.json.sig"}
    assert not extra, f"unexpected files in the cache: {sorted(extra)}"
    return state


# ---------------------------------------------------------------------------------------------------
# a site the test may rebuild, served by its own nginx


class MutableSite:
    def __init__(self, data_src: Path, work: Path, sign_key: Path | None = None):
        from builder.site.build import build

        self.data = work / "data"
        self.site = work / "site"
        self.sign_key = sign_key
        shutil.copytree(data_src, self.data)
        build(self.data, self.site, sign_key=sign_key)
        self.nginx = Nginx(self.site, work / "nginx").start()
        self.api = f"http://127.0.0.1:{self.nginx.port}/api"
        self._bump = 0

    def manifest(self) -> dict:
        return json.loads((self.site / routes.MANIFEST_FILE).read_bytes())

    def keys(self, category: str) -> list[str]:
        root = self.data / category
        return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml")
                      if p.name != "_category.yaml")

    def edit(self, category: str, key: str, description: str) -> None:
        p = self.data / category / f"{key}.yaml"
        text = p.read_text(encoding="utf-8")
        new = re.sub(r"^description: .*$", f"description: {description}", text, count=1, flags=re.M)
        assert new != text, f"{p}: no description line"
        p.write_text(new, encoding="utf-8")

    def rebuild(self) -> None:
        from builder.site.build import build

        build(self.data, self.site, sign_key=self.sign_key)
        # nginx's ETag is mtime (seconds) + size: two builds in one second may give the manifest the
        # same ETag. Move every changed file's mtime to a distinct second, as a real rebuild later would.
        # (The client decides about category files by sha256, never by their ETag: only the manifest's
        # validators matter.)
        self._bump += 1
        t = time.time() + 10 * self._bump
        os.utime(self.site / routes.MANIFEST_FILE, (t, t))

    def stop(self) -> None:
        self.nginx.stop()


def client_env_free() -> dict[str, str]:
    """os.environ without any HORDE_MODEL_REFERENCE_* / AIWORKER_CACHE_HOME (tests set what they mean)."""
    return {k: v for k, v in os.environ.items()
            if not k.upper().startswith("HORDE_MODEL_REFERENCE_") and k.upper() != "AIWORKER_CACHE_HOME"}
