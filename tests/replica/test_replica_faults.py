"""The fallback chain under real transport faults, end to end: the httpx fetcher through our own server in
front of nginx serving the corpus site: connection refused, a hang past the timeout, 503/429 with
Retry-After, a dropped connection, a truncated body, a captive-portal page. For each: the client returns
the last good data (warm cache) or the GitHub fallback (cold cache), `source_info()` says why, nothing
corrupt reaches the cache, and a dead or hanging CDN costs one timeout per refresh in wall-clock time.
The trust rules, the breaker and the order of the chain are tested request by request on the in-memory
CDN (test_replica_chain.py)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from builder.replica import ReplicaClient, SourceUnavailable, thaw
from builder.routes import MANIFEST_FILE, v2_file
from tests.replica_support import (
    MANIFEST_PATH,
    V2,
    FaultServer,
    assert_cache_sound,
    dead_url,
)

IMAGE_PATH = f"{V2}/image_generation"
TIMEOUT = 0.5


def make(home: Path, api: str | None, github: FaultServer | None = None, **kw: Any) -> ReplicaClient:
    settings: dict[str, Any] = dict(env={}, primary_api_url=api, cache_home=home, cache_ttl_seconds=0,
                                    timeout=TIMEOUT, breaker_cooldown=0, enable_github_fallback=github is not None)
    if github is not None:
        settings["github_raw_url"] = github.base
    settings.update(kw)
    return ReplicaClient(**settings)


def site_v2(site_dir: Path, category: str) -> dict:
    return json.loads((site_dir / v2_file(category)).read_bytes())


def real_manifest(site_dir: Path) -> bytes:
    return (site_dir / MANIFEST_FILE).read_bytes()


def info_of(client: ReplicaClient, category: str = "image_generation") -> dict:
    return client.source_info()["categories"][category]


# ---------------------------------------------------------------------------------------------------
# warm cache, GitHub off: the last good copy


MANIFEST_FAULTS = [
    ("hang", "timed out after 0.5s"),
    (503, "HTTP 503"),
    ("drop", "malformed response"),
    ("truncate", "truncated"),
    ("html", "an HTML page"),
]


@pytest.mark.parametrize(("fault", "why"), MANIFEST_FAULTS, ids=[str(f) for f, _ in MANIFEST_FAULTS])
def test_manifest_fault_serves_last_good_copy(front: FaultServer, site_dir: Path, tmp_path: Path, fault: Any,
                                              why: str) -> None:
    good = site_v2(site_dir, "image_generation")
    client = make(tmp_path, front.api)
    assert thaw(client.get_model_reference("image_generation")) == good
    assert info_of(client)["source"] == "cdn"

    front.faults[MANIFEST_PATH] = fault
    t = time.monotonic()
    records = client.get_model_reference("image_generation")
    assert time.monotonic() - t < TIMEOUT + 1.5  # bounded: one timeout at most
    assert thaw(records) == good
    info = info_of(client)
    assert info["source"] == "cache" and info["cached_from"] == "cdn"
    assert why in info["fallback_reason"], info["fallback_reason"]
    assert client.get_model_reference_or_none("image_generation") is not None
    # another process on the same cache gets the same last good copy, and the same explanation
    other = make(tmp_path, front.api)
    assert thaw(other.get_model_reference("image_generation")) == good
    state = assert_cache_sound(tmp_path)
    assert state["manifest"]["sha256"] == hashlib.sha256(real_manifest(site_dir)).hexdigest()

    # the CDN recovers: the next refresh uses it again
    del front.faults[MANIFEST_PATH]
    assert thaw(client.get_model_reference("image_generation")) == good
    info = info_of(client)
    assert info["source"] == "cdn" and info["fallback_reason"] is None


def test_retry_after_keeps_the_source_closed(front: FaultServer, site_dir: Path, tmp_path: Path) -> None:
    client = make(tmp_path, front.api)
    client.get_model_reference("image_generation")
    front.faults[MANIFEST_PATH] = 429
    front.retry_after = "30"
    assert client.get_model_reference_or_none("image_generation") is not None
    front.clear()
    del front.faults[MANIFEST_PATH]
    assert thaw(client.get_model_reference("image_generation", overwrite_existing=True)) == site_v2(
        site_dir, "image_generation")
    assert front.log == []  # the server asked for 30 s of peace: the cache serves meanwhile
    assert client.source_info()["sources"][front.api]["circuit_open_until"] is not None
    assert "circuit open" in info_of(client)["fallback_reason"]


def test_connection_refused_serves_last_good_copy(front: FaultServer, site_dir: Path, tmp_path: Path) -> None:
    good = site_v2(site_dir, "image_generation")
    assert thaw(make(tmp_path, front.api).get_model_reference("image_generation")) == good
    dead = dead_url()
    client = make(tmp_path, dead)
    assert thaw(client.get_model_reference("image_generation")) == good
    info = info_of(client)
    assert info["source"] == "cache" and "connection failed" in info["fallback_reason"]
    assert client.source_info()["sources"][dead]["last_error"].startswith("connection failed")
    assert_cache_sound(tmp_path)


# ---------------------------------------------------------------------------------------------------
# cold cache, GitHub on: the GitHub fallback


COLD_FAULTS = [
    (MANIFEST_PATH, "hang", "timed out"),
    (MANIFEST_PATH, "truncate", "truncated"),
    (IMAGE_PATH, "hang", "timed out"),
    (IMAGE_PATH, 500, "HTTP 500"),
    (IMAGE_PATH, "drop", "malformed response"),
    (IMAGE_PATH, "truncate", "truncated"),
    (IMAGE_PATH, "corrupt", "sha256"),
]


@pytest.mark.parametrize(("path", "fault", "why"), COLD_FAULTS,
                         ids=[f"{p.rsplit('/', 1)[1]}-{f}" for p, f, _ in COLD_FAULTS])
def test_fault_on_cold_cache_falls_back_to_github(front: FaultServer, github: FaultServer, site_dir: Path,
                                                  tmp_path: Path, path: str, fault: Any, why: str) -> None:
    good = site_v2(site_dir, "image_generation")
    front.faults[path] = fault
    client = make(tmp_path, front.api, github)
    assert thaw(client.get_model_reference("image_generation")) == good
    info = info_of(client)
    assert info["source"] == "github"
    assert info["url"] == f"{github.base}/Haidra-Org/AI-Horde-image-model-reference/refs/heads/main/" \
                          "stable_diffusion.json"
    assert why in info["fallback_reason"], info["fallback_reason"]
    state = assert_cache_sound(tmp_path)
    assert "v2/image_generation" not in state["site"]  # nothing from the faulty CDN was kept
    assert state["github"]["v2/image_generation"]["count"] == len(good)


def test_no_source_at_all(tmp_path: Path, github: FaultServer) -> None:
    github.faults = {p: 503 for p in ("/Haidra-Org/AI-Horde-image-model-reference/refs/heads/main/"
                                      "stable_diffusion.json",)}
    client = make(tmp_path, dead_url(), github)
    assert client.get_model_reference_or_none("image_generation") is None
    assert client.get_model_or_none("image_generation", "stable_diffusion") is None
    with pytest.raises(SourceUnavailable) as e:
        client.get_model_reference("image_generation")
    assert "connection failed" in str(e.value) and "HTTP 503" in str(e.value)
    assert client.source_info()["categories"]["image_generation"]["source"] is None


# ---------------------------------------------------------------------------------------------------
# bounded cost of a dead CDN, and mirrors


def test_dead_cdn_costs_one_timeout_per_refresh(front: FaultServer, github: FaultServer, site_dir: Path,
                                                tmp_path: Path) -> None:
    front.faults[MANIFEST_PATH] = "hang"
    client = make(tmp_path, front.api, github, breaker_cooldown=30)
    t = time.monotonic()
    refs = client.get_all_model_references_or_none()
    elapsed = time.monotonic() - t
    assert len(front.log) == 1  # one manifest request; no category was tried on the CDN
    assert elapsed < TIMEOUT + 3, elapsed  # one timeout, plus converting the GitHub files
    for cat in ("image_generation", "text_generation", "clip", "controlnet", "miscellaneous"):
        assert thaw(refs[cat]) == site_v2(site_dir, cat), cat
    # categories that have no legacy GitHub file and no cached copy: nothing to serve
    assert refs["controlnet_annotator"] is None and refs["lora"] is None
    # the breaker is open: the next refresh does not even try the CDN
    front.clear()
    client.refresh()
    assert front.log == []
    src = client.source_info()["sources"][front.api]
    assert src["circuit_open_until"] is not None and "timed out" in src["last_error"]
    reason = info_of(client)["fallback_reason"]
    assert "circuit open" in reason


def test_hanging_category_skips_the_cdn_for_the_rest_of_the_refresh(front: FaultServer, github: FaultServer,
                                                                    site_dir: Path, tmp_path: Path) -> None:
    front.faults[IMAGE_PATH] = "hang"
    front.faults[f"{V2}/text_generation"] = "hang"
    client = make(tmp_path, front.api, github)
    t = time.monotonic()
    refs = client.get_all_model_references_or_none()
    assert time.monotonic() - t < TIMEOUT + 3
    assert len(front.requests_to(IMAGE_PATH)) == 1
    assert front.requests_to(f"{V2}/text_generation") == []  # after the timeout, the CDN is skipped
    assert thaw(refs["image_generation"]) == site_v2(site_dir, "image_generation")
    assert thaw(refs["text_generation"]) == site_v2(site_dir, "text_generation")
    info = client.source_info()["categories"]
    assert info["clip"]["source"] == "cdn"  # fetched before the hang
    assert info["image_generation"]["source"] == "github" and info["text_generation"]["source"] == "github"
    assert "not retried in this refresh" in info["text_generation"]["fallback_reason"]
    assert info["controlnet_annotator"]["source"] == "cdn"
    # a category after the hang with neither a GitHub file nor a cached copy waits for the next refresh
    assert refs["video_generation"] is None


def test_mirror_after_a_dead_cdn(front: FaultServer, site_dir: Path, tmp_path: Path) -> None:
    client = make(tmp_path, dead_url(), mirror_urls=(front.api,))
    assert thaw(client.get_model_reference("text_generation")) == site_v2(site_dir, "text_generation")
    info = info_of(client, "text_generation")
    assert info["source"] == "mirror" and info["url"].startswith(front.base)
    assert "connection failed" in info["fallback_reason"]
    assert client.source_info()["manifest"]["source"] == "mirror"
