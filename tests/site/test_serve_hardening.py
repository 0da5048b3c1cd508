"""`hmr serve` under hostile clients: malformed request lines get 400/414/505 (not an empty reply),
connections are capped (no thread per idle socket past the cap), idle connections time out, and a
request resolves the site link once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_hmr


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("serve-hard") / "site"
    r = run_hmr("build", "--data", str(FIXTURES / "valid"), "--out", str(site))
    assert r.returncode == 0, r.stderr
    return site


@pytest.fixture
def server(small_site: Path) -> Iterator[object]:
    from builder.site.serve import SiteHandler, make_server

    srv = make_server(small_site, "127.0.0.1", 0)
    srv._slots = threading.BoundedSemaphore(4)  # a small cap to reach
    srv.RequestHandlerClass = type("QuickIdle", (SiteHandler,), {"timeout": 0.5})
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(("request_line", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /x HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET /api/ HTTP/9.9\r\n\r\n", 505),
    (b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\n\r\n", 414),
])
def test_malformed_request_lines_get_their_status(server: object, request_line: bytes, status: int) -> None:
    reply = _raw(server.server_address[1], request_line)  # type: ignore[attr-defined]
    assert reply.split(b"\r\n", 1)[0].split(b" ")[1] == str(status).encode(), reply[:200]
    assert b'{"detail":' in reply


def test_connections_past_the_cap_are_closed_and_threads_stay_bounded(server: object) -> None:
    port = server.server_address[1]  # type: ignore[attr-defined]
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        time.sleep(0.2)
        assert threading.active_count() - before <= 4
    finally:
        for s in idle:
            s.close()
    time.sleep(0.8)  # the idle ones time out; the server answers again
    assert _raw(port, b"GET /api/ HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 ")


def test_idle_connection_times_out(server: object) -> None:
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as s:  # type: ignore[attr-defined]
        t0 = time.monotonic()
        assert s.recv(10) == b""  # closed by the server, unasked
        assert time.monotonic() - t0 < 3


def test_quiet_serve_prints_nothing_on_abrupt_disconnects(small_site: Path) -> None:
    import subprocess
    import sys

    from tests.helpers import ROOT

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", "serve", "--site", str(small_site), "--port",
                             str(port), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for data in (b"GET /api/ HTTP/1.1\r\n", b"GARBAGE\r\n\r\n", b"GET /api/model_references/v2/manifest.json HTTP/1.1"
                                                                   b"\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(data)
            s.close()  # a reset, mid-request or mid-answer
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err
    assert [line for line in err.decode().splitlines() if not line.startswith("serving ")] == []
