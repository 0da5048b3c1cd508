"""GitHub fallback, on the in-memory CDN holding the corpus legacy files at the raw-URL layout
(`/{owner}/{name}/refs/heads/{branch}/{file}`): with the CDN down, every legacy category comes back equal
to what the CDN serves, byte for byte (the same import + build code converts them; text from models.csv),
v1 documents equal the site's, GitHub is asked conditionally, broken answers are refused, and the raw base,
repositories and branches follow the configuration (a mirror or proxy prefix really applies)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from builder.categories import LEGACY
from builder.replica import ReplicaClient, thaw
from builder.routes import MANIFEST_FILE, v1_key, v2_key
from tests.helpers import LEGACY_CURRENT
from tests.replica.simulator import CDN, GITHUB, CdnSimulator, Clock, Fetch
from tests.replica_support import assert_cache_sound, github_files

Make = Callable[..., ReplicaClient]
IMAGE_FILE = "Haidra-Org/AI-Horde-image-model-reference/refs/heads/main/stable_diffusion.json"


def test_every_legacy_category_equals_the_cdn_data(replica: Make, sim: CdnSimulator) -> None:
    sim.fail(f"{CDN}/{MANIFEST_FILE}", transport="refused")
    client = replica(github=True)
    manifest = sim.manifest()
    for cat in LEGACY:
        assert thaw(client.get_model_reference(cat.name)) == sim.document(cat.name), cat.name
        info = client.source_info()["categories"][cat.name]
        assert info["source"] == "github" and "ConnectionRefusedError" in info["fallback_reason"], cat.name
        # not only equal data: the very bytes the CDN serves (same records, values, order, serialisation)
        assert info["sha256"] == manifest["files"][v2_key(cat.name)]["sha256"], cat.name
    text_url = client.source_info()["categories"]["text_generation"]["url"]
    assert text_url == f"{GITHUB}/Haidra-Org/AI-Horde-text-model-reference/refs/heads/main/models.csv"
    assert_cache_sound(client.config.base_path.parent)


def test_legacy_documents_from_github(replica: Make, sim: CdnSimulator) -> None:
    client = replica(github=True, primary_api_url=None)
    # image files are served as GitHub holds them; the text v1 document is db.json
    assert client.get_legacy("image_generation") == (LEGACY_CURRENT / "stable_diffusion.json").read_bytes()
    assert client.get_legacy("text_generation") == (LEGACY_CURRENT / "db.json").read_bytes()
    for name in ("image_generation", "text_generation", "controlnet"):
        assert json.loads(client.get_legacy(name)) == json.loads(sim.hosts[CDN][v1_key(name)]), name
    assert client.source_info()["legacy"]["text_generation"]["url"].endswith("/db.json")


def test_github_is_asked_conditionally(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    client = replica(github=True, primary_api_url=None)
    first = client.get_model_reference("image_generation")
    clock.advance(61)
    assert client.get_model_reference("image_generation") is first  # 304: the same copy, not re-converted
    assert sim.fetches == [Fetch("github", IMAGE_FILE, 200, False), Fetch("github", IMAGE_FILE, 304, True)]
    # the copy on disk is gone: the 304 cannot be used, so GitHub is asked again without validators
    for copy in (client.config.cache_dir / "github" / "v2").iterdir():
        copy.unlink()
    sim.clear()
    clock.advance(61)
    assert thaw(client.get_model_reference("image_generation")) == thaw(first)
    assert sim.fetches == [Fetch("github", IMAGE_FILE, 304, True), Fetch("github", IMAGE_FILE, 200, False)]
    assert_cache_sound(client.config.base_path.parent)


@pytest.mark.parametrize(("answer", "why"), [
    (b"<!DOCTYPE html><html><body>rate limited</body></html>", "cannot convert the legacy file"),
    (b"{}", "stable_diffusion.json holds no model: refused"),
    (b'{"a": 1}', "cannot convert the legacy file"),
    (404, "github: HTTP 404"),
])
def test_broken_github_answers_are_refused(replica: Make, sim: CdnSimulator, clock: Clock, answer: bytes | int,
                                           why: str) -> None:
    client = replica(github=True, primary_api_url=None, breaker_cooldown=0)
    good = thaw(client.get_model_reference("image_generation"))
    state = assert_cache_sound(client.config.base_path.parent)
    if isinstance(answer, int):
        sim.fail(f"{GITHUB}/{IMAGE_FILE}", answer)
    else:
        sim.tamper(f"{GITHUB}/{IMAGE_FILE}", answer)
    clock.advance(61)
    assert thaw(client.get_model_reference("image_generation")) == good
    info = client.source_info()["categories"]["image_generation"]
    assert (info["source"], info["cached_from"]) == ("cache", "github")
    assert why in info["fallback_reason"], info["fallback_reason"]
    assert assert_cache_sound(client.config.base_path.parent)["github"] == state["github"]  # the good copy stays


def test_raw_url_prefix_and_repositories_follow_the_configuration(sim: CdnSimulator, tmp_path: object) -> None:
    """A mirror or proxy prefix replaces https://raw.githubusercontent.com (the existing client's proxy
    setting has no effect); owner, name and branch come from the existing library's variables."""
    proxy = "https://proxy.test/ghproxy/https://raw.githubusercontent.com"
    files = {path.replace("Haidra-Org/AI-Horde-image-model-reference/refs/heads/main",
                          "my-org/image-fork/refs/heads/staging"): body for path, body in github_files().items()}
    sim.publish_files(proxy, files)
    del sim.hosts[GITHUB]
    env = {
        "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": "",  # no CDN: GitHub only, as the existing library
        "HORDE_MODEL_REFERENCE_GITHUB_RAW_URL": proxy,
        "HORDE_MODEL_REFERENCE_IMAGE_GITHUB_REPO__OWNER": "my-org",
        "horde_model_reference_image_github_repo__name": "image-fork",  # names are case-insensitive
        "HORDE_MODEL_REFERENCE_IMAGE_GITHUB_REPO__BRANCH": "staging",
        "AIWORKER_CACHE_HOME": str(tmp_path),
    }
    client = ReplicaClient(env=env, fetcher=sim)
    assert client.config.primary_api_url is None
    assert thaw(client.get_model_reference("image_generation")) == sim.document("image_generation")
    assert thaw(client.get_model_reference("text_generation")) == sim.document("text_generation")
    assert [(host, status) for host, _key, status in sim.log()] == [(proxy, 200), (proxy, 200)]
    info = client.source_info()["categories"]["image_generation"]
    assert info["url"] == f"{proxy}/my-org/image-fork/refs/heads/staging/stable_diffusion.json"
    assert info["fallback_reason"] is None  # no CDN configured: GitHub is the first source
