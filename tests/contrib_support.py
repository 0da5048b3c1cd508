"""Helpers of the contributor-workflow tests (tests/test_contrib_*.py): a local stand-in for GitHub's
REST API (what PyGithub calls), and a local HTTPS server with a throwaway CA for `hmr check-urls`.

Both listen on 127.0.0.1 only, on a free port, in a thread of the test process.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) is expected, not a failure of the server

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshakes run in the connection's own thread, not one by one in the accept loop
        if isinstance(request, ssl.SSLSocket):
            request.do_handshake()
        super().finish_request(request, client_address)


# --- GitHub REST stand-in ---------------------------------------------------------------------------

@dataclass
class FakeGitHub:
    """Issues and issue comments of one repository, in memory; every request is recorded."""

    repo: str = "owner/repo"
    requests: list[tuple[str, str, Any, str]] = field(default_factory=list)
    issues: dict[int, dict] = field(default_factory=dict)
    comments: dict[int, dict] = field(default_factory=dict)
    base: str = ""
    _server: Any = None
    _next: int = 1

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlsplit(self.path)
                fake.requests.append((self.command, url.path, body, self.headers.get("Authorization", "")))
                status, out = fake.route(self.command, url.path, dict(parse_qsl(url.query)), body)
                self._reply(status, out)

            do_GET = do_POST = do_PATCH = _handle  # noqa: N815 - http.server's naming

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # the JSON PyGithub needs: url fields on the same host as base_url (see reference/infra.md §6)
    def _issue_json(self, n: int) -> dict:
        i = self.issues[n]
        return {**i, "number": n, "url": f"{self.base}/repos/{self.repo}/issues/{n}",
                "html_url": f"https://github.example/{self.repo}/issues/{n}"}

    def _comment_json(self, cid: int) -> dict:
        c = self.comments[cid]
        return {"id": cid, "body": c["body"], "url": f"{self.base}/repos/{self.repo}/issues/comments/{cid}",
                "html_url": f"https://github.example/{self.repo}/issues/{c['issue']}#issuecomment-{cid}"}

    def _id(self) -> int:
        n = self._next
        self._next += 1
        return n

    def add_pull(self, number: int) -> None:
        self.issues[number] = {"title": "a pull request", "body": "", "state": "open",
                               "pull_request": {"url": f"{self.base}/repos/{self.repo}/pulls/{number}"}}
        self._next = max(self._next, number + 1)

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        prefix = f"/repos/{self.repo}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        rest = path[len(prefix):]
        if rest == "" and method == "GET":
            return 200, {"full_name": self.repo, "url": f"{self.base}{prefix}"}
        if rest == "/issues" and method == "GET":
            state = query.get("state", "open")
            return 200, [self._issue_json(n) for n in sorted(self.issues)
                         if state == "all" or self.issues[n]["state"] == state]
        if rest == "/issues" and method == "POST":
            n = self._id()
            self.issues[n] = {"title": body["title"], "body": body.get("body", ""), "state": "open",
                              "labels": [{"name": x} for x in body.get("labels", [])]}
            return 201, self._issue_json(n)
        m = re.fullmatch(r"/issues/(\d+)", rest)
        if m and int(m.group(1)) in self.issues:
            n = int(m.group(1))
            if method == "PATCH":
                self.issues[n].update({k: v for k, v in body.items() if k in ("title", "body", "state")})
            return 200, self._issue_json(n)
        m = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if m and int(m.group(1)) in self.issues:
            n = int(m.group(1))
            if method == "POST":
                cid = 1000 + len(self.comments)
                self.comments[cid] = {"issue": n, "body": body["body"]}
                return 201, self._comment_json(cid)
            return 200, [self._comment_json(c) for c in sorted(self.comments) if self.comments[c]["issue"] == n]
        m = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if m and int(m.group(1)) in self.comments and method == "PATCH":
            cid = int(m.group(1))
            self.comments[cid]["body"] = body["body"]
            return 200, self._comment_json(cid)
        return 404, {"message": "Not Found"}

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _, _ in self.requests if m != "GET"]


# --- HTTPS server with its own CA ------------------------------------------------------------------

def make_ca(dest: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hmr test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    dest.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = dest / "ca.pem", dest / "server.pem", dest / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


#: path -> (HEAD handler, GET handler); a handler gets the request handler and sends the answer
Route = Callable[[BaseHTTPRequestHandler], None]


def answer(status: int, length: int | None = None, headers: dict[str, str] | None = None,
           delay: float = 0.0, body: bytes = b"") -> Route:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if delay:
            time.sleep(delay)
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(length if length is not None else len(body)))
        h.end_headers()
        if h.command == "GET" and body:
            h.wfile.write(body)

    return handle


class HTTPSFiles:
    """An HTTPS server on 127.0.0.1 answering HEAD/GET per path from a table; records the requests."""

    def __init__(self, cert: Path, key: Path, routes: dict[str, dict[str, Route]]):
        self.routes = routes
        self.requests: list[tuple[str, str, str]] = []
        #: requests in flight at once, counted for paths starting with `count_prefix`
        self.count_prefix = "/busy"
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        files = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                counted = self.path.startswith(files.count_prefix)
                with lock:
                    files.requests.append((self.command, self.path, self.headers.get("Range", "")))
                    if counted:
                        files.in_flight += 1
                        files.max_in_flight = max(files.max_in_flight, files.in_flight)
                try:
                    route = files.routes.get(self.path, {}).get(self.command)
                    (route or answer(404))(self)
                finally:
                    if counted:
                        with lock:
                            files.in_flight -= 1

            do_HEAD = do_GET = _handle  # noqa: N815 - http.server's naming

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
