"""The default transport asks for gzip and decodes it itself: incrementally, under the size cap on the
decoded body (a gzip bomb is cut off), refusing stacked or unknown encodings and truncated streams."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from builder.replica import FetchFailed, HttpxFetcher

BODY = b'{"a": {"name": "a"}}' * 2000
ANSWERS: dict[str, tuple[str | None, bytes]] = {
    "/gzip": ("gzip", gzip.compress(BODY)),
    "/plain": (None, BODY),
    "/stacked": ("gzip, gzip", gzip.compress(gzip.compress(BODY))),
    "/br": ("br", b"whatever"),
    "/bomb": ("gzip", gzip.compress(b"\0" * 50_000_000)),
    "/truncated": ("gzip", gzip.compress(BODY)[:-20]),
}


@pytest.fixture
def server() -> Iterator[str]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            seen.append(self.headers.get("Accept-Encoding", ""))
            encoding, body = ANSWERS[self.path]
            self.send_response(200)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        assert seen and all(a == "gzip" for a in seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_gzip_is_decoded_and_the_cap_applies_to_the_decoded_size(server: str) -> None:
    f = HttpxFetcher(max_bytes=1_000_000)
    try:
        assert f.fetch(f"{server}/gzip", 5).body == BODY
        assert f.fetch(f"{server}/plain", 5).body == BODY
        with pytest.raises(FetchFailed, match="larger than 1000000 bytes"):
            f.fetch(f"{server}/bomb", 5)  # 50 MB decoded from ~50 KB: stopped at the cap
        with pytest.raises(FetchFailed, match="stacked content encodings"):
            f.fetch(f"{server}/stacked", 5)
        with pytest.raises(FetchFailed, match="only gzip"):
            f.fetch(f"{server}/br", 5)
        with pytest.raises(FetchFailed, match="truncated|malformed|undecodable|Error"):
            f.fetch(f"{server}/truncated", 5)
    finally:
        f.close()
