"""Freshness against a built site served by nginx (the CDN stand-in, with the build's config): the first
read fetches the manifest and the category; a read within the TTL makes no request (in this process
or another one sharing the cache); after the TTL a no-change refresh is one request answered 304 with
no body; after a rebuild only the changed categories are downloaded, verified. Requests are counted
in nginx's own access log."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from builder import routes
from builder.replica import ReplicaClient, thaw
from tests.replica_support import MutableSite, assert_cache_sound
from tests.site_support import Nginx

# any method: other tests share this nginx (HEAD, OPTIONS), and their lines may still be in the log
ACCESS = re.compile(r'"[A-Z]+ (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3}) (?P<bytes>\d+) ')
V2 = "/" + routes.V2


class Log:
    """nginx access-log lines appended since the last call."""

    def __init__(self, nginx: Nginx):
        self.nginx = nginx
        self.seen = 0

    def new(self) -> list[tuple[str, int, int]]:
        for _ in range(50):  # nginx writes the line after the response: give it a moment
            lines = self.nginx.access_log()
            if len(lines) >= self.seen:
                break
            time.sleep(0.01)
        lines = self.nginx.access_log()
        out = []
        for line in lines[self.seen:]:
            m = ACCESS.search(line)
            assert m, line
            out.append((m["path"], int(m["status"]), int(m["bytes"])))
        self.seen = len(lines)
        return out

    def settle(self, expected: int) -> list[tuple[str, int, int]]:
        deadline = time.monotonic() + 2
        while len(self.nginx.access_log()) - self.seen < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.new()


def make(site: MutableSite, home: Path, ttl: float) -> ReplicaClient:
    return ReplicaClient(env={}, primary_api_url=site.api, cache_home=home, cache_ttl_seconds=ttl, timeout=5,
                         enable_github_fallback=False)


def api(nginx: Nginx) -> str:
    return f"http://127.0.0.1:{nginx.port}/api"


def site_doc(site: MutableSite, category: str) -> dict:
    return json.loads((site.site / routes.v2_file(category)).read_bytes())


def test_conditional_refresh_and_partial_download(mutable_site: MutableSite, tmp_path: Path) -> None:
    site, log = mutable_site, Log(mutable_site.nginx)
    log.new()
    ttl = 1.0  # long enough for the in-TTL checks (memory and one disk read) on a loaded machine
    client = make(site, tmp_path, ttl)

    # first read: the manifest and the category, nothing else
    image = client.get_model_reference("image_generation")
    text = client.get_model_reference("text_generation")
    assert thaw(image) == site_doc(site, "image_generation")
    assert thaw(text) == site_doc(site, "text_generation")
    first = log.settle(3)
    assert [(p, s) for p, s, _ in first] == [(f"{V2}/manifest.json", 200), (f"{V2}/image_generation", 200),
                                             (f"{V2}/text_generation", 200)]

    # within the TTL: no request, from this client or from a new one (another process) on the same cache
    assert client.get_model_reference("image_generation") is image
    other = make(site, tmp_path, ttl)
    other_text = other.get_model_reference("text_generation")
    first_key = next(iter(image))
    other_rec = other.get_model("image_generation", first_key)
    time.sleep(0.05)
    assert log.new() == []
    assert thaw(other_text) == thaw(text)
    assert thaw(other_rec) == site_doc(site, "image_generation")[first_key]

    # after the TTL, nothing changed: one conditional request, 304, no body bytes; the categories stay
    time.sleep(ttl + 0.05)
    assert client.get_model_reference("image_generation") is image
    assert client.get_model_reference("text_generation") is text
    assert log.settle(1) == [(f"{V2}/manifest.json", 304, 0)]
    info = client.source_info()
    assert info["sources"][site.api]["last_status"] == 304
    assert info["categories"]["image_generation"]["source"] == "cdn"

    # a rebuild that changes one image model: the manifest, then only image_generation is downloaded
    gen = site.manifest()["generation"]
    key = site.keys("image_generation")[0]
    site.edit("image_generation", key, "Edited by the replica test.")
    site.rebuild()
    assert site.manifest()["generation"] == gen + 1
    time.sleep(ttl + 0.05)
    image2 = client.get_model_reference("image_generation")
    text2 = client.get_model_reference("text_generation")
    assert image2[key]["description"] == "Edited by the replica test."
    assert thaw(image2) == site_doc(site, "image_generation")
    assert text2 is text  # unchanged sha256: not downloaded, not even re-parsed
    after = log.settle(2)
    assert [(p, s) for p, s, _ in after] == [(f"{V2}/manifest.json", 200), (f"{V2}/image_generation", 200)]
    info = client.source_info()
    assert info["generation"] == gen + 1
    assert info["categories"]["image_generation"]["generation"] == gen + 1
    assert info["categories"]["text_generation"]["generation"] == gen + 1  # same bytes, confirmed current
    state = assert_cache_sound(tmp_path)
    assert state["generation"] == gen + 1

    # the other client (another process) picks the new generation up from the shared cache: its refresh
    # is one 304 (the manifest it now holds is current), and the new image file comes from disk
    time.sleep(ttl + 0.05)
    assert thaw(other.get_model_reference("image_generation")) == thaw(image2)
    assert [(p, s) for p, s, _ in log.settle(1)] == [(f"{V2}/manifest.json", 304)]


def test_legacy_documents_and_forced_refresh(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    log = Log(nginx)
    log.new()
    client = ReplicaClient(env={}, primary_api_url=api(nginx), cache_home=tmp_path, cache_ttl_seconds=3600,
                           timeout=5, enable_github_fallback=False)
    raw = client.get_legacy("image_generation")
    assert raw == (site_dir / routes.v1_file("image_generation")).read_bytes()
    assert client.get_legacy("stable_diffusion") is raw  # the v1 alias names the same category
    assert client.get_legacy("lora") == b"{}"  # managed elsewhere: v1 answers {}
    assert [(p, s) for p, s, _ in log.settle(3)] == [(f"{V2}/manifest.json", 200),
                                                     ("/" + routes.v1_key("image_generation"), 200),
                                                     ("/" + routes.v1_key("lora"), 200)]
    # overwrite_existing ignores the TTL: one conditional request
    client.get_legacy("image_generation", overwrite_existing=True)
    assert [(p, s) for p, s, _ in log.settle(1)] == [(f"{V2}/manifest.json", 304)]
    client.close()


def test_signed_site_built_by_hmr_build(tmp_path: Path) -> None:
    """`hmr build --sign-key` writes manifest.json.sig; nginx serves it; the client checks it, follows a
    signed rebuild, and refuses a manifest signed by a key it does not trust (the last good copy stays)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from builder.replica import ReplicaClient
    from builder.signing import key_id, public_bytes
    from tests.helpers import ROOT

    def key_file(name: str) -> tuple[Path, Ed25519PrivateKey]:
        key = Ed25519PrivateKey.generate()
        path = tmp_path / name
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path, key

    trusted_path, trusted = key_file("trusted.pem")
    other_path, _other = key_file("other.pem")
    public = base64.b64encode(public_bytes(trusted.public_key())).decode()
    site = MutableSite(ROOT / "data", tmp_path / "signed", sign_key=trusted_path)
    try:
        client = ReplicaClient(env={}, primary_api_url=site.api, cache_home=tmp_path / "cache", cache_ttl_seconds=0,
                               timeout=5, enable_github_fallback=False, trusted_keys=(public,), breaker_cooldown=0)
        image = thaw(client.get_model_reference("image_generation"))
        assert image == site_doc(site, "image_generation")
        assert client.source_info()["manifest"]["signed_by"] == key_id(public_bytes(trusted.public_key()))

        key = site.keys("image_generation")[0]
        site.edit("image_generation", key, "A signed edit.")
        site.rebuild()
        assert client.get_model_reference("image_generation")[key]["description"] == "A signed edit."

        site.sign_key = other_path  # a build signed with a key the client does not trust
        site.edit("image_generation", key, "An edit signed by someone else.")
        site.rebuild()
        assert client.get_model_reference("image_generation")[key]["description"] == "A signed edit."
        info = client.source_info()["categories"]["image_generation"]
        assert info["source"] == "cache" and "untrusted key" in info["fallback_reason"]
        assert_cache_sound(tmp_path / "cache")
    finally:
        site.stop()
