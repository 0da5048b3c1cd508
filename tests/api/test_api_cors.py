"""CORS: every answer of `hmr serve` and of nginx with the generated config may be read cross-origin,
and an OPTIONS preflight for a GET is answered, as GitHub raw does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.site_support import Http, Nginx

TARGETS = (
    "/api/model_references/v2/clip",  # extensionless key
    "/api/model_references/v2/clip.json",
    "/api/model_references/v1/stable_diffusion",  # v1 alias (an exact location in nginx)
    "/api/model_references/v1/text_generation?include_group=true",  # query variant
    "/",  # directory index
    "/api/model_references/v2/no_such_category",  # the JSON 404
    "/_config/nginx.conf",  # hidden
)


@pytest.fixture(params=["serve", "nginx"])
def http(request: pytest.FixtureRequest) -> Iterator[Http]:
    if request.param == "serve":
        port = request.getfixturevalue("served")[1]
    else:
        server: Nginx = request.getfixturevalue("nginx")
        port = server.port
    client = Http(port)
    yield client
    client.close()


@pytest.mark.parametrize("target", TARGETS)
def test_every_answer_carries_cors(http: Http, target: str) -> None:
    for method in ("GET", "HEAD"):
        r = http.request(target, method=method, headers={"Origin": "https://example.org"})
        assert r.status in (200, 404), (target, method, r.status)
        assert r.headers.get("access-control-allow-origin") == "*", (target, method, r.headers)
        assert r.headers.get("access-control-expose-headers") == "ETag", (target, method)


def test_not_modified_carries_cors(http: Http) -> None:
    first = http.request("/api/model_references/v2/clip")
    r = http.request("/api/model_references/v2/clip", headers={"If-None-Match": first.headers["etag"]})
    assert r.status == 304
    assert r.headers.get("access-control-allow-origin") == "*"


@pytest.mark.parametrize("target", ["/api/model_references/v2/clip", "/api/model_references/v2/text_generation",
                                    "/models/clip/index.html"])
def test_preflight_is_answered(http: Http, target: str) -> None:
    r = http.request(target, method="OPTIONS", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert r.status == 204, (target, r.status)
    assert r.body == b""
    assert r.headers.get("access-control-allow-origin") == "*"
    methods = {m.strip() for m in r.headers.get("access-control-allow-methods", "").split(",")}
    assert {"GET", "HEAD"} <= methods
    allowed = {h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")}
    assert "if-none-match" in allowed
    assert int(r.headers.get("access-control-max-age", "0")) > 0
    # the preflight does not stand in for the read: the GET still answers with the document
    g = http.request(target, headers={"Origin": "https://example.org"})
    assert g.status == 200 and g.headers.get("access-control-allow-origin") == "*"
