"""The fallback chain under faults, injected by our own server in front of nginx serving the corpus site:
connection refused, a hang past the timeout, 500/503/429, a dropped connection, a truncated body, a
200 captive-portal page, an empty `{}`, a sha256 mismatch, an emptied category under a consistent
manifest (shrink), a lower generation, a tampered or wrongly signed manifest. For each: the client
returns the last good data (warm cache) or the GitHub fallback (cold cache), `source_info()` says why,
and nothing corrupt reaches the cache. Also the circuit breaker (one timeout per refresh) and mirrors."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.replica import ReplicaClient, SourceUnavailable, thaw
from builder.signing import key_id, public_bytes, sign
from tests.replica_support import (
    MANIFEST_PATH,
    SIG_PATH,
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
    return json.loads((site_dir / f"api/model_references/v2/{category}.json").read_bytes())


def real_manifest(site_dir: Path) -> bytes:
    return (site_dir / "api/model_references/v2/manifest.json").read_bytes()


def info_of(client: ReplicaClient, category: str = "image_generation") -> dict:
    return client.source_info()["categories"][category]


# ---------------------------------------------------------------------------------------------------
# warm cache, GitHub off: the last good copy


MANIFEST_FAULTS = [
    ("hang", "timed out after 0.5s"),
    (500, "HTTP 500"),
    (503, "HTTP 503"),
    (429, "HTTP 429"),
    ("drop", "malformed response"),
    ("truncate", "truncated"),
    ("html", "an HTML page"),
    ("empty", "no files table"),
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


def test_lower_generation_is_refused(front: FaultServer, site_dir: Path, tmp_path: Path) -> None:
    good = site_v2(site_dir, "image_generation")

    def generation(n: int):  # noqa: ANN202
        def rewrite(body: bytes) -> bytes:
            doc = orjson.loads(body)
            doc["generation"] = n
            return orjson.dumps(doc)
        return rewrite

    front.faults[MANIFEST_PATH] = generation(7)
    client = make(tmp_path, front.api)
    assert thaw(client.get_model_reference("image_generation")) == good
    assert client.source_info()["generation"] == 7
    front.faults[MANIFEST_PATH] = generation(6)  # a CDN node, or an attacker, serving an older build
    assert thaw(client.get_model_reference("image_generation")) == good
    info = info_of(client)
    assert info["source"] == "cache"
    assert "generation 6 is lower than the cached 7" in info["fallback_reason"]
    state = assert_cache_sound(tmp_path)
    assert state["generation"] == 7


def test_emptied_category_under_a_consistent_manifest_is_refused(front: FaultServer, github: FaultServer,
                                                                site_dir: Path, tmp_path: Path) -> None:
    """A broken build that publishes `{}` (sha256 and manifest consistent): shrink protection."""
    good = site_v2(site_dir, "image_generation")
    client = make(tmp_path, front.api)
    assert thaw(client.get_model_reference("image_generation")) == good

    def emptied(body: bytes) -> bytes:
        doc = orjson.loads(body)
        doc["generation"] += 1
        for key in ("api/model_references/v2/image_generation", "api/model_references/v2/image_generation.json"):
            doc["files"][key] = {**doc["files"][key], "sha256": hashlib.sha256(b"{}").hexdigest(), "bytes": 2}
        return orjson.dumps(doc)

    front.faults[MANIFEST_PATH] = emptied
    front.faults[IMAGE_PATH] = "empty"
    assert thaw(client.get_model_reference("image_generation")) == good
    info = info_of(client)
    assert info["source"] == "cache"
    assert f"0 models where the cached copy has {len(good)}" in info["fallback_reason"]
    # with GitHub on, the fallback is GitHub's (equal) data rather than the cache
    with_github = make(tmp_path, front.api, github)
    assert thaw(with_github.get_model_reference("image_generation")) == good
    assert info_of(with_github)["source"] == "github"
    state = assert_cache_sound(tmp_path)
    assert state["site"]["v2/image_generation"]["count"] == len(good)  # the good copy was never replaced


# ---------------------------------------------------------------------------------------------------
# cold cache, GitHub on: the GitHub fallback


COLD_FAULTS = [
    (MANIFEST_PATH, "hang", "timed out"),
    (MANIFEST_PATH, 503, "HTTP 503"),
    (MANIFEST_PATH, "html", "an HTML page"),
    (MANIFEST_PATH, "empty", "no files table"),
    (MANIFEST_PATH, "truncate", "truncated"),
    (IMAGE_PATH, "hang", "timed out"),
    (IMAGE_PATH, 500, "HTTP 500"),
    (IMAGE_PATH, 429, "HTTP 429"),
    (IMAGE_PATH, "drop", "malformed response"),
    (IMAGE_PATH, "truncate", "truncated"),
    (IMAGE_PATH, "html", "differs from the manifest"),
    (IMAGE_PATH, "empty", "differs from the manifest"),
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
# signatures


@pytest.fixture
def signing_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, base64.b64encode(public_bytes(key.public_key())).decode()


def test_signed_manifest_verified_and_tampering_refused(front: FaultServer, site_dir: Path, tmp_path: Path,
                                                        signing_key: tuple[Ed25519PrivateKey, str]) -> None:
    key, public = signing_key
    good = site_v2(site_dir, "image_generation")
    front.faults[SIG_PATH] = sign(real_manifest(site_dir), key)
    client = make(tmp_path, front.api, trusted_keys=(public,))
    assert thaw(client.get_model_reference("image_generation")) == good
    info = client.source_info()
    assert info["manifest"]["signed_by"] == key_id(public_bytes(key.public_key()))
    assert info["config"]["signature_required"] is True

    def tampered(body: bytes) -> bytes:  # e.g. a CDN edge rewriting a hash: same shape, other bytes
        doc = orjson.loads(body)
        doc["files"]["api/model_references/v2/image_generation"]["sha256"] = "0" * 64
        return orjson.dumps(doc)

    front.faults[MANIFEST_PATH] = tampered
    assert thaw(client.get_model_reference("image_generation")) == good
    info = info_of(client)
    assert info["source"] == "cache"
    assert "does not match the manifest" in info["fallback_reason"]
    state = assert_cache_sound(tmp_path)
    assert state["manifest"]["sha256"] == hashlib.sha256(real_manifest(site_dir)).hexdigest()


@pytest.mark.parametrize("case", ["untrusted-key", "missing", "garbage"])
def test_bad_signature_refused_on_cold_cache(front: FaultServer, github: FaultServer, site_dir: Path,
                                             tmp_path: Path, signing_key: tuple[Ed25519PrivateKey, str],
                                             case: str) -> None:
    _key, public = signing_key
    front.faults[SIG_PATH] = {"untrusted-key": sign(real_manifest(site_dir), Ed25519PrivateKey.generate()),
                              "missing": 404, "garbage": b"not a signature"}[case]
    why = {"untrusted-key": "untrusted key", "missing": "HTTP 404", "garbage": "malformed signature"}[case]
    client = make(tmp_path, front.api, trusted_keys=(public,))
    assert client.get_model_reference_or_none("image_generation") is None
    assert why in client.source_info()["categories"]["image_generation"]["fallback_reason"]
    with_github = make(tmp_path, front.api, github, trusted_keys=(public,))
    assert thaw(with_github.get_model_reference("image_generation")) == site_v2(site_dir, "image_generation")
    assert info_of(with_github)["source"] == "github"
    state = assert_cache_sound(tmp_path)
    assert state["manifest"] is None and state["site"] == {}


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
