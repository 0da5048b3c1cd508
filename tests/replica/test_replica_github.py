"""GitHub fallback against a local server holding the corpus legacy files at the raw-URL layout
(`/{owner}/{name}/refs/heads/{branch}/{file}`): with the CDN down, every legacy category comes back equal
to what the CDN serves (the same import + build code converts them; text from models.csv), v1 documents
equal the site's, GitHub is asked conditionally, and the raw base, repositories and branches follow the
configuration (a mirror or proxy prefix really applies)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from builder.categories import LEGACY
from builder.replica import ReplicaClient, thaw
from tests.replica_support import IMAGE_REPO, FaultServer, assert_cache_sound, dead_url, files_origin, github_files
from tests.site_support import LEGACY_CURRENT


def make(home: Path, raw_url: str, **kw: object) -> ReplicaClient:
    settings: dict = dict(env={}, primary_api_url=dead_url(), cache_home=home, cache_ttl_seconds=0, timeout=2,
                          github_raw_url=raw_url)
    settings.update(kw)
    return ReplicaClient(**settings)


def test_every_legacy_category_equals_the_cdn_data(github: FaultServer, site_dir: Path, tmp_path: Path) -> None:
    client = make(tmp_path, github.base)
    manifest = json.loads((site_dir / "api/model_references/v2/manifest.json").read_bytes())
    for cat in LEGACY:
        site_bytes = (site_dir / f"api/model_references/v2/{cat.name}.json").read_bytes()
        assert thaw(client.get_model_reference(cat.name)) == json.loads(site_bytes), cat.name
        info = client.source_info()["categories"][cat.name]
        assert info["source"] == "github", cat.name
        assert "connection failed" in info["fallback_reason"]
        # not only equal data: the very bytes the CDN serves (same records, values, order, serialisation)
        assert info["sha256"] == manifest["files"][f"api/model_references/v2/{cat.name}"]["sha256"], cat.name
    text_url = client.source_info()["categories"]["text_generation"]["url"]
    assert text_url.endswith("/Haidra-Org/AI-Horde-text-model-reference/refs/heads/main/models.csv")
    assert_cache_sound(tmp_path)


def test_legacy_documents_from_github(github: FaultServer, site_dir: Path, tmp_path: Path) -> None:
    client = make(tmp_path, github.base)
    # image files are served as GitHub holds them; the text v1 document is db.json
    assert client.get_legacy("image_generation") == (LEGACY_CURRENT / "stable_diffusion.json").read_bytes()
    assert client.get_legacy("text_generation") == (LEGACY_CURRENT / "db.json").read_bytes()
    for name in ("image_generation", "text_generation", "controlnet"):
        site_v1 = (site_dir / f"api/model_references/v1/{name}.json").read_bytes()
        assert json.loads(client.get_legacy(name)) == json.loads(site_v1), name
    assert client.source_info()["legacy"]["text_generation"]["url"].endswith("/db.json")


def test_github_is_asked_conditionally(github: FaultServer, tmp_path: Path) -> None:
    client = make(tmp_path, github.base)
    first = client.get_model_reference("image_generation")
    path = f"{IMAGE_REPO}/stable_diffusion.json"
    assert [e.status for e in github.requests_to(path)] == [200]
    again = client.get_model_reference("image_generation")  # TTL 0: checks again
    assert [(e.status, e.body_bytes) for e in github.requests_to(path)] == [(200, e.body_bytes) for e in
                                                                             github.requests_to(path)[:1]] + [(304, 0)]
    assert thaw(again) == thaw(first)


def test_raw_url_prefix_and_repositories_follow_the_configuration(tmp_path: Path, site_dir: Path) -> None:
    """A mirror or proxy prefix replaces https://raw.githubusercontent.com (the existing client's proxy
    setting has no effect); owner, name and branch come from the existing library's variables."""
    files = {}
    for path, body in github_files().items():
        path = path.replace("Haidra-Org/AI-Horde-image-model-reference/refs/heads/main",
                            "my-org/image-fork/refs/heads/staging")
        files["/ghproxy/https://raw.githubusercontent.com" + path] = body
    server = FaultServer(files_origin(files)).start()
    try:
        env = {
            "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": "",  # no CDN: GitHub only, as the existing library
            "HORDE_MODEL_REFERENCE_GITHUB_RAW_URL": f"{server.base}/ghproxy/https://raw.githubusercontent.com",
            "HORDE_MODEL_REFERENCE_IMAGE_GITHUB_REPO__OWNER": "my-org",
            "horde_model_reference_image_github_repo__name": "image-fork",  # names are case-insensitive
            "HORDE_MODEL_REFERENCE_IMAGE_GITHUB_REPO__BRANCH": "staging",
            "HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS": "0",
            "AIWORKER_CACHE_HOME": str(tmp_path),
        }
        client = ReplicaClient(env=env)
        assert client.config.primary_api_url is None
        image = client.get_model_reference("image_generation")
        assert thaw(image) == json.loads((site_dir / "api/model_references/v2/image_generation.json").read_bytes())
        assert thaw(client.get_model_reference("text_generation")) == json.loads(
            (site_dir / "api/model_references/v2/text_generation.json").read_bytes())
        info = client.source_info()["categories"]["image_generation"]
        assert info["url"] == (f"{server.base}/ghproxy/https://raw.githubusercontent.com/my-org/image-fork/"
                               "refs/heads/staging/stable_diffusion.json")
        assert info["fallback_reason"] is None  # no CDN configured: GitHub is the first source
        assert all(e.status in (200, 304) for e in server.log)
    finally:
        server.stop()


def test_broken_github_answers_are_refused(github: FaultServer, tmp_path: Path) -> None:
    path = f"{IMAGE_REPO}/stable_diffusion.json"
    client = make(tmp_path, github.base, breaker_cooldown=0)  # each fault must reach GitHub
    good = thaw(client.get_model_reference("image_generation"))
    for fault, why in (("html", "cannot convert"), ("empty", "holds no model"), ("truncate", "truncated"),
                       (404, "HTTP 404")):
        github.faults[path] = fault
        assert thaw(client.get_model_reference("image_generation")) == good, fault
        info = client.source_info()["categories"]["image_generation"]
        assert info["source"] == "cache" and info["cached_from"] == "github", fault
        assert why in info["fallback_reason"], (fault, info["fallback_reason"])
    state = assert_cache_sound(tmp_path)
    body = (tmp_path / "horde_model_reference/replica/github/v2/image_generation."
            f"{state['github']['v2/image_generation']['sha256'][:16]}.json").read_bytes()
    assert hashlib.sha256(body).hexdigest() == state["github"]["v2/image_generation"]["sha256"]


def test_hanging_github_costs_one_timeout_per_refresh(github: FaultServer, tmp_path: Path) -> None:
    for path in github_files():
        github.faults[path] = "hang"
    client = make(tmp_path, github.base, timeout=0.5, breaker_cooldown=0)
    t = time.monotonic()
    refs = client.get_all_model_references_or_none()
    assert time.monotonic() - t < 2.5
    assert len(github.log) == 1  # the first legacy file timed out: the others were not tried
    assert all(v is None for v in refs.values())
    reason = client.source_info()["categories"]["text_generation"]["fallback_reason"]
    assert "not retried in this refresh" in reason and "connection failed" in reason
