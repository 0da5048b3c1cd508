"""The nginx config that `hmr build` generates from the route table, run in a real nginx (Debian package):
every key served as the route table says, nothing else served, and the same answers as `hmr serve`."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.routes import IMMUTABLE_CACHE, MUTABLE_CACHE, Route, route_map, routes
from builder.site.nginx import NGINX_CONF, NginxConfigError, nginx_config
from builder.site.serve import make_server, site_files
from builder.site.writer import write_tree
from tests.site_support import (
    NOT_FOUND,
    TRAVERSALS,
    Http,
    Nginx,
    load_manifest,
)

DOT_SEGMENTS_TO_A_KEY = {"/api/model_references/v2/./clip": "/api/model_references/v2/clip"}


@pytest.fixture(scope="module")
def http(nginx: Nginx) -> Iterator[Http]:
    client = Http(nginx.port)
    yield client
    client.close()


def test_every_key_is_served_as_the_route_table_says(site_dir: Path, http: Http, nginx: Nginx) -> None:
    manifest = load_manifest(site_dir)
    table = route_map(site_files(site_dir))
    keys = set(manifest["files"]) | {"api/model_references/v2/manifest.json", "api/model_references/v2/manifest"}
    assert keys == set(table)
    for key in sorted(keys):
        r = http.get_key(key)
        assert r.status == 200, key
        route = table[key]
        content = (site_dir / route.file).read_bytes()
        assert r.body == content, key
        assert r.headers["content-type"] == route.content_type, key
        assert r.headers["cache-control"] == route.cache_control, key
        assert "etag" in r.headers and "last-modified" in r.headers
    assert "[crit]" not in nginx.error_log() and "[emerg]" not in nginx.error_log()


def test_conditional_requests_and_head(http: Http) -> None:
    key = "api/model_references/v2/image_generation"
    first = http.get_key(key)
    assert http.get_key(key, headers={"If-None-Match": first.headers["etag"]}).status == 304
    assert http.get_key(key, headers={"If-Modified-Since": first.headers["last-modified"]}).status == 304
    head = http.get_key(key, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(len(first.body))


def test_json_and_pages_go_out_gzip_compressed_as_hmr_serve_sends_them(site_dir: Path, http: Http) -> None:
    import gzip

    for key in ("api/model_references/v2/image_generation", "api/model_references/v1/stable_diffusion",
                "index.html"):
        route = route_map(site_files(site_dir))[key]
        plain = (site_dir / route.file).read_bytes()
        r = http.get_key(key, headers={"Accept-Encoding": "gzip"})
        assert r.status == 200 and r.headers.get("content-encoding") == "gzip", key
        assert gzip.decompress(r.body) == plain and len(r.body) < len(plain), key
        assert "Accept-Encoding" in r.headers.get("vary", ""), key
        assert r.headers["access-control-allow-origin"] == "*", key
        # nginx weakens the compressed answer's ETag; it still revalidates
        assert r.headers["etag"].startswith('W/"'), key
        again = http.get_key(key, headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["etag"]})
        assert again.status == 304, key
    r = http.get_key("api/model_references/v2/image_generation")
    assert "content-encoding" not in r.headers  # a client that did not ask gets the bytes as they are


def test_everything_else_is_the_json_404(http: Http) -> None:
    home = http.request("/")  # the site root is the HTML home page (the directory index)
    assert home.status == 200 and home.headers["content-type"] == "text/html; charset=utf-8"
    for target in ("/api", "/api/model_references/v2/nope", "/api/model_references/v2/clip.json.json",
                   "/api/model_references/v2/text_generation/model/", "/legacy/models", "/_config/nginx.conf",
                   "/_config/", "/legacy/models.csv.json", *TRAVERSALS):
        r = http.request(target)
        if r.status == 400:
            continue  # nginx refuses some malformed targets outright; never a file
        if target in DOT_SEGMENTS_TO_A_KEY:
            # nginx removes dot segments (RFC 3986) before matching: this one lands on a key in the site
            assert r.status == 200 and r.body == http.request(DOT_SEGMENTS_TO_A_KEY[target]).body
            continue
        assert r.status == 404, target
        assert b"root:" not in r.body
        assert r.headers["content-type"] == "application/json", target
        assert r.json() == NOT_FOUND, target


def test_the_config_is_written_into_the_site_and_changes_with_the_routes(site_dir: Path) -> None:
    conf = (site_dir / NGINX_CONF).read_text()
    assert conf == nginx_config(routes(site_files(site_dir), web=True))
    assert "default_type application/json;" in conf
    assert 'location = "/api/model_references/v1/stable_diffusion"' in conf
    assert 'location = "/api/model_references/v1/db.json"' in conf
    assert "try_files $uri $uri.json =404;" in conf


# A hand-made site with the cases the corpus does not have: another cache policy, directory
# indexes, quotes and odd characters in keys, a file and a folder of the same name, a JSON file
# outside api/ (which has no extensionless key), and a stray `.json` that must stay hidden.
ODD_FILES = {
    "index.html": b"<html>home</html>",
    "models/index.html": b"<html>models</html>",
    "models/clip.html": b"<html>clip</html>",
    "schemas/manifest.schema.json": b"{}",
    "snapshots/2026-01-01/api/x.json": b'{"snap":1}',
    "api/model_references/v2/clip.json": b'{"a":1}',
    "api/model_references/v2/clip/model/ViT-L/14.json": b'{"b":2}',
    'api/model_references/v2/image_generation/model/Say "hi" (v2) #1 & 50% [x].json': b'{"c":3}',
    "api/model_references/v2/image_generation/model/Ünïcødé ✓.json": b'{"d":4}',
    "api/model_references/v2/image_generation/model/semi;colon{brace}.json": b'{"e":5}',
    "api/model_references/v2/changes.atom": b"<feed/>",
    "legacy/models.csv": b"name\r\nx\r\n",
    "legacy/db.json": b"{}",
}


@pytest.fixture(scope="module")
def odd_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("odd") / "site"
    files = dict(ODD_FILES)
    files[NGINX_CONF] = nginx_config(routes(files)).encode()
    write_tree(site, files)
    return site


def test_odd_site_nginx_and_hmr_serve_answer_the_same(odd_site: Path, tmp_path: Path) -> None:
    table = route_map(site_files(odd_site))
    assert table["snapshots/2026-01-01/api/x"].cache_control == IMMUTABLE_CACHE
    ngx = Nginx(odd_site, tmp_path / "nginx").start()
    server = make_server(odd_site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        a, b = Http(ngx.port), Http(server.server_address[1])
        targets = ["/" + quote(k, safe="/") for k in table]
        targets += ["/", "/models/", "/models", "/legacy/db", "/legacy/models.csv.json", "/schemas/manifest.schema",
                    "/api/model_references/v2/clip/model/ViT-L", "/api/model_references/v2/clip/model/",
                    "/snapshots/2026-01-01/api/x.json.json", "/_config/nginx.conf", "/nope"]
        for target in targets:
            got_n, got_s = a.request(target), b.request(target)
            assert got_n.status == got_s.status, target
            assert got_n.body == got_s.body, target
            if got_s.status in (200, 404):
                assert got_n.headers["content-type"] == got_s.headers["content-type"], target
            if got_s.status == 200:
                assert got_n.headers["cache-control"] == got_s.headers["cache-control"], target
        # and both match the route table
        for key, route in table.items():
            r = b.get_key(key)
            assert r.status == 200 and r.headers["content-type"] == route.content_type, key
            assert hashlib.sha256(r.body).digest() == hashlib.sha256(ODD_FILES[route.file]).digest()
        assert a.request("/").body == b"<html>home</html>"
        assert a.request("/models/").headers["content-type"] == "text/html; charset=utf-8"
        a.close()
        b.close()
    finally:
        server.shutdown()
        server.server_close()
        ngx.stop()
    assert "[crit]" not in ngx.error_log() and "[emerg]" not in ngx.error_log()


def test_keys_nginx_cannot_express_are_refused_at_build_time() -> None:
    # the prefix rule serves any key through $uri; only a key that needs its own block (an alias here)
    # and names a file with "$" cannot be written down, as try_files has no escape for "$"
    plain = routes({"api/a$b.json": b"{}"})
    assert "a$b" not in nginx_config(plain)
    aliased = [*plain, Route("api/alias", "api/a$b.json", "application/json", MUTABLE_CACHE)]
    with pytest.raises(NginxConfigError, match="try_files"):
        nginx_config(aliased)
