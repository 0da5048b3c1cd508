"""`hmr serve`'s 404: an HTML page for a browser outside `api/`, the old API's JSON everywhere else."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator

import pytest

from builder import api
from builder.site.serve import make_server
from tests.helpers import FIXTURES

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON_404 = b'{"detail":"Not Found"}'


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A preview server over a build of the valid fixture data; its port."""
    site = tmp_path_factory.mktemp("not-found") / "site"
    api.build(FIXTURES / "valid", site)
    server = make_server(site, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _get(port: int, path: str, accept: str | None, method: str = "GET") -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers={"Accept": accept} if accept else {})
    r = conn.getresponse()
    answer = (r.status, r.getheader("Content-Type") or "", r.read())
    conn.close()
    return answer


def test_browser_gets_the_html_page_outside_the_api(port: int) -> None:
    status, ctype, body = _get(port, "/models/image_generation/No%20Such.html?x=1", BROWSER)
    assert (status, ctype) == (404, "text/html; charset=utf-8")
    page = body.decode()
    assert page.startswith("<!doctype html>")
    assert "<title>Not found · AI-Horde model reference</title>" in page
    assert "<p>Nothing is published at <code>/models/image_generation/No%20Such.html</code>.</p>" in page
    assert '<a href="/models/image_generation/index.html">Image generation</a>' in page  # the site's navigation


def test_page_escapes_the_requested_path(port: int) -> None:
    _, _, body = _get(port, "/<script>", BROWSER)
    assert b"<code>/&lt;script&gt;</code>" in body and b"<script>" not in body


def test_head_announces_the_page_without_sending_it(port: int) -> None:
    _, _, page = _get(port, "/nope", BROWSER)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("HEAD", "/nope", headers={"Accept": BROWSER})
    r = conn.getresponse()
    assert (r.status, r.getheader("Content-Length"), r.read()) == (404, str(len(page)), b"")
    conn.close()


@pytest.mark.parametrize(("path", "accept"), [
    ("/nope", None),                                      # a script: no Accept
    ("/nope", "application/json"),
    ("/nope", "*/*"),                                     # curl, httpx, requests
    ("/api/model_references/v2/no_such_category", BROWSER),  # the API answers JSON, browser or not
    ("/api/nope", BROWSER),
    ("/api", BROWSER),
])
def test_json_stays_for_the_api_and_other_clients(port: int, path: str, accept: str | None) -> None:
    assert _get(port, path, accept) == (404, "application/json", JSON_404)

