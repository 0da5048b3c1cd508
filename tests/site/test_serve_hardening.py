"""`hmr serve` under bad clients and swaps: malformed requests get a status and a JSON body, the
connections are capped, idle ones time out, disconnects are no traceback, a swap of the tree is
answered from one tree or the other, and JSON goes out gzip-compressed where the client accepts it."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from builder.routes import v2_file, v2_key
from builder.site.serve import SiteServer, make_server
from tests.helpers import HMR, ROOT
from tests.site_support import free_port, wait_for_port

KEY = "/" + v2_key("image_generation")


def start(site: Path, **options: object) -> SiteServer:
    server = SiteServer(site, ("127.0.0.1", 0), quiet=True, **options)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server(site_dir: Path) -> Iterator[SiteServer]:
    srv = start(site_dir)
    yield srv
    srv.shutdown()
    srv.server_close()


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # a server that answers before reading (503) may have closed already
            pass
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"\x00\x01\x02\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\n\r\n", 505),
    (b"GET /api/%ff%fHTTP/1.1\r\n\r\n", 400),  # two words: HTTP/0.9, found by the fuzzer
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
])
def test_a_malformed_request_gets_its_status_and_a_json_body(server: SiteServer, request_bytes: bytes,
                                                              status: int) -> None:
    port = server.server_address[1]
    answer = exchange(port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:120]
    assert b"\x00" not in head and b"Access-Control-Allow-Origin: *" in head
    assert "detail" in json.loads(body)
    assert httpx.get(f"{server.url}{KEY}").status_code == 200  # still serving


def test_connections_are_capped_and_idle_ones_time_out(site_dir: Path) -> None:
    srv = start(site_dir, max_connections=4, idle_timeout=0.5)
    try:
        port = srv.server_address[1]
        idle = [socket.create_connection(("127.0.0.1", port), 2) for _ in range(4)]
        time.sleep(0.2)
        # the fifth is told at once, not queued behind the idle four
        assert exchange(port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503 ")
        # the idle four are closed by the server after the timeout, freeing their slots
        for s in idle:
            assert s.recv(100) == b""
            s.close()
        time.sleep(0.1)
        assert httpx.get(f"{srv.url}{KEY}").status_code == 200
        assert threading.active_count() < 20
    finally:
        srv.shutdown()
        srv.server_close()


def test_quiet_means_silent_even_when_clients_misbehave(site_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*HMR, "serve", "--site", str(site_dir), "--port", str(port), "--quiet"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        for data in (b"\x00junk\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET " + KEY.encode() + b" HTTP/1.1\r\n\r\n"):
            exchange(port, data)
        for _ in range(5):  # clients that hang up mid-answer
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET {KEY} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        time.sleep(0.3)
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    # the one line saying where it serves, and nothing else
    assert [line for line in err.splitlines() if not line.startswith("serving ")] == [], err


def test_json_goes_out_gzip_compressed_to_a_client_that_takes_it(server: SiteServer, site_dir: Path) -> None:
    plain = httpx.get(f"{server.url}{KEY}", headers={"Accept-Encoding": "identity"})
    raw = httpx.Client().send(httpx.Request("GET", f"{server.url}{KEY}", headers={"Accept-Encoding": "gzip"}),
                              stream=True)
    body = b"".join(raw.iter_raw())  # the bytes on the wire, not decoded
    raw.close()
    assert raw.headers["Content-Encoding"] == "gzip" and raw.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == plain.content and len(body) < len(plain.content) / 3
    assert raw.headers["ETag"] == "W/" + plain.headers["ETag"]
    assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    # the compressed answer revalidates with its own validator, and so does the plain one
    for etag, enc in ((raw.headers["ETag"], "gzip"), (plain.headers["ETag"], "identity")):
        r = httpx.get(f"{server.url}{KEY}", headers={"Accept-Encoding": enc, "If-None-Match": etag})
        assert r.status_code == 304
    head = httpx.head(f"{server.url}{KEY}", headers={"Accept-Encoding": "gzip"})
    assert head.headers["Content-Length"] == str(len(body))
    # refused gzip (q=0), and files too small to gain, go out as they are
    r = httpx.get(f"{server.url}{KEY}", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in r.headers
    small = httpx.get(f"{server.url}/api/heartbeat", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 200 and "Content-Encoding" not in small.headers


def test_requests_during_swaps_are_answered_from_one_tree(site_dir: Path, tmp_path: Path) -> None:
    # the two trees differ in one file; every answer must be one of the two versions, never a 404
    a, b = tmp_path / "site", tmp_path / ".site.new"
    shutil.copytree(site_dir, a)
    shutil.copytree(site_dir, b)
    doc = b / v2_file("image_generation")
    versions = {(a / doc.relative_to(b)).read_bytes()}
    doc.write_bytes(doc.read_bytes().replace(b'"stable_diffusion"', b'"stable_diffusion" ', 1))
    versions.add(doc.read_bytes())
    srv = make_server(a, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    answers: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client() as c:
            while not stop.is_set():
                r = c.get(f"{srv.url}{KEY}", headers={"Accept-Encoding": "identity"})
                answers.append((r.status_code, r.content))

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        old = tmp_path / ".site.old"
        swaps = 0
        deadline = time.monotonic() + 20
        while (len(answers) < 100 or swaps < 20) and time.monotonic() < deadline:
            os.rename(a, old)  # the swap `hmr build` does: two renames
            os.rename(b, a)
            os.rename(old, b)
            swaps += 1
            time.sleep(0.1)  # builds are seconds apart; each swap still lands mid-request
    finally:
        stop.set()
        for w in workers:
            w.join()
        srv.shutdown()
        srv.server_close()
    assert len(answers) >= 100 and swaps >= 20
    assert {status for status, _ in answers} == {200}
    assert {body for _, body in answers} <= versions
