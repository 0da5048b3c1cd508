"""`hmr serve`: every route of the corpus site, conditional requests, content types, HEAD, 404s, and
requests that try to leave the site directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.routes import route_map
from builder.site.serve import make_server, request_key, site_files
from tests.site_support import (
    HMR,
    NOT_FOUND,
    ROOT,
    TRAVERSALS,
    Http,
    free_port,
    load_manifest,
    wait_for_port,
)


@pytest.fixture(scope="module")
def http(served: tuple[object, int]) -> Iterator[Http]:
    client = Http(served[1])
    yield client
    client.close()


def test_every_route_resolves_with_its_manifest_entry(site_dir: Path, http: Http) -> None:
    manifest = load_manifest(site_dir)
    routes = route_map(site_files(site_dir))
    assert len(manifest["files"]) > 1800
    for key, entry in manifest["files"].items():
        r = http.get_key(key)
        assert r.status == 200, key
        assert hashlib.sha256(r.body).hexdigest() == entry["sha256"], key
        assert r.headers["content-type"] == entry["content_type"], key
        assert r.headers["content-length"] == str(entry["bytes"]), key
        assert r.headers["etag"] == f'"{entry["sha256"]}"', key
        assert r.headers["cache-control"] == routes[key].cache_control, key
        assert "last-modified" in r.headers
    # the manifest itself is served too, under both keys
    assert http.get_key("api/model_references/v2/manifest.json").status == 200
    assert http.get_key("api/model_references/v2/manifest").headers["content-type"] == "application/json"


def test_content_types_of_the_old_api_paths(http: Http) -> None:
    for key in ("api/model_references/v2/image_generation", "api/model_references/v2/lora",
                "api/model_references/v1/stable_diffusion", "api/model_references/v1/db.json",
                "api/model_references/v1/text_generation", "api/heartbeat", "api/replicate_mode",
                "api/model_references/v2/model_categories",
                "api/model_references/v2/text_generation/model/acrastt/Marx-3B-V3"):
        r = http.get_key(key)
        assert (r.status, r.headers["content-type"]) == (200, "application/json"), key
        r.json()
    r = http.get_key("legacy/models.csv")
    assert (r.status, r.headers["content-type"]) == (200, "text/csv; charset=utf-8")
    # a key with spaces and parentheses, percent-encoded by the client
    r = http.request("/api/model_references/v2/image_generation/model/AlbedoBase%20XL%20(SDXL)")
    assert r.status == 200 and r.json()["name"] == "AlbedoBase XL (SDXL)"
    # the v1 aliases are copies, not redirects: the old client does not follow redirects
    assert http.get_key("api/model_references/v1/stable_diffusion.json").body == \
        http.get_key("api/model_references/v1/image_generation").body


def test_conditional_requests_get_304(http: Http) -> None:
    key = "api/model_references/v2/image_generation"
    first = http.get_key(key)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"nope", W/{etag}'}, {"If-None-Match": "*"},
                    {"If-Modified-Since": modified}, {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        r = http.get_key(key, headers=headers)
        assert r.status == 304, headers
        assert r.body == b""
        assert r.headers["etag"] == etag and r.headers["cache-control"] == first.headers["cache-control"]
    for headers in ({"If-None-Match": '"other"'}, {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
                    {"If-Modified-Since": "not a date"},
                    # If-None-Match decides when both are sent (RFC 9110)
                    {"If-None-Match": '"other"', "If-Modified-Since": modified}):
        r = http.get_key(key, headers=headers)
        assert r.status == 200 and r.body == first.body, headers
    r = http.get_key(key, method="HEAD", headers={"If-None-Match": etag})
    assert r.status == 304


def test_head_is_get_without_a_body(http: Http) -> None:
    key = "api/model_references/v2/text_generation"
    get, head = http.get_key(key), http.get_key(key, method="HEAD")
    assert head.status == 200 and head.body == b""
    for h in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
        assert head.headers[h] == get.headers[h], h
    assert http.request("/nope", method="HEAD").status == 404


def test_unknown_paths_get_the_json_404(http: Http) -> None:
    # the site root is the HTML home page (the directory index), like S3 website hosting and nginx
    home = http.request("/")
    assert home.status == 200 and home.headers["content-type"] == "text/html; charset=utf-8"
    for target in ("/api", "/api/model_references/v2/nope", "/api/model_references/v2/clip.json.json",
                   "/api/model_references/v2/text_generation/model/", "/legacy/models", "/api/model_references/v2",
                   "/api/model_references/v2/image_generation/model/" + "z" * 3000):
        r = http.request(target)
        assert r.status == 404, target
        assert r.headers["content-type"] == "application/json"
        assert r.json() == NOT_FOUND
    # a query string is ignored, as a static host ignores it
    assert http.request("/api/model_references/v2/clip?include_group=true").status == 200


def test_other_methods_are_refused(http: Http) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = http.request("/api/model_references/v2/clip", method=method)
        assert r.status == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS", method


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_is_refused(http: Http, target: str) -> None:
    r = http.request(target)
    assert r.status == 404, target
    assert b"root:" not in r.body and r.json() == NOT_FOUND


def test_absolute_filesystem_paths_are_not_keys(site_dir: Path, http: Http) -> None:
    inside = site_dir / "api" / "heartbeat.json"
    assert inside.is_file()
    for target in (quote(str(inside)), quote(str(site_dir)) + "/api/heartbeat", "/" + quote(str(inside))):
        r = http.request(target if target.startswith("/") else "/" + target)
        assert r.status == 404 and r.json() == NOT_FOUND, target


def test_request_key_decoding() -> None:
    assert request_key("/api/a%20b?x=1") == "api/a b"
    assert request_key("http://h:1/api/x") == "api/x"
    assert request_key("api/x") is None  # not origin-form
    assert request_key("/a%00b") is None
    assert request_key("/a%ffb") is None  # not UTF-8
    assert request_key("/..%5cx") is None


def test_symlink_out_of_the_site_is_not_followed(site_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "api" / "model_references" / "v2").mkdir(parents=True)
    shutil.copy(site_dir / "api" / "model_references" / "v2" / "clip.json", site / "api" / "model_references" / "v2")
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": true}')
    os.symlink(secret, site / "api" / "leak.json")
    server = make_server(site, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        http = Http(server.server_address[1])
        assert http.request("/api/model_references/v2/clip").status == 200
        for target in ("/api/leak", "/api/leak.json"):
            r = http.request(target)
            assert r.status == 404 and b"secret" not in r.body
        http.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_rebuild_under_a_running_server_is_picked_up(site_data_copy: Path, tmp_path: Path) -> None:
    from builder.site.build import build

    data = site_data_copy
    site = tmp_path / "site"
    build(data, site)
    server = make_server(site, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        http = Http(server.server_address[1])
        key = "api/model_references/v2/image_generation/model/Deliberate"
        old = http.get_key(key)
        assert old.status == 200
        (data / "image_generation" / "Deliberate.yaml").unlink()
        build(data, site)
        assert http.get_key(key).status == 404
        r = http.get_key("api/model_references/v2/image_generation", headers={"If-None-Match": old.headers["etag"]})
        assert r.status == 200 and b'"Deliberate"' not in r.body
        http.close()
    finally:
        server.shutdown()
        server.server_close()


def test_hmr_serve_command(site_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([*HMR, "serve", "--site", str(site_dir), "--port", str(port)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        http = Http(port)
        r = http.request("/api/model_references/v2/clip")
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        assert http.request("/nope").status == 404
        http.close()
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert '"GET /api/model_references/v2/clip HTTP/1.1" 200' in text
    assert '"GET /nope HTTP/1.1" 404' in text
    # a missing site is a one-line error, exit 1
    r = subprocess.run([*HMR, "serve", "--site", str(tmp_path / "absent"), "--port", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "absent" in r.stderr
