"""The fallback chain and its requests, driven by the in-memory CDN (`simulator.py`) and a test clock.

Every test runs a real `ReplicaClient` (real trust rules, real cache folder) and asserts on what it
fetched: freshness and conditional requests, partial downloads after a rebuild, the trust rules
(sha256, size, shape, shrink, rollback, signatures), the circuit breaker and Retry-After, and the
order CDN -> mirror -> GitHub -> last good copy."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.replica import ReplicaClient, SourceUnavailable, thaw
from builder.routes import MANIFEST_FILE, SIGNATURE_FILE, v1_key, v2_file, v2_key
from builder.signing import key_id, public_bytes
from tests.replica.simulator import CDN, GITHUB, MIRROR, CdnSimulator, Clock, Fetch
from tests.replica_support import assert_cache_sound

M, SIG = MANIFEST_FILE, SIGNATURE_FILE
IMG, TXT = v2_key("image_generation"), v2_key("text_generation")
GH_IMAGE = "Haidra-Org/AI-Horde-image-model-reference/refs/heads/main/stable_diffusion.json"
Make = Callable[..., ReplicaClient]


def info_of(client: ReplicaClient, category: str = "image_generation") -> dict[str, Any]:
    return client.source_info()["categories"][category]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------------
# freshness: what a read costs


def test_first_read_fetches_the_manifest_and_the_category_only(replica: Make, sim: CdnSimulator) -> None:
    client = replica()
    image = client.get_model_reference("image_generation")
    assert thaw(image) == sim.document("image_generation")
    assert sim.fetches == [Fetch("cdn", M, 200, False), Fetch("cdn", IMG, 200, False)]
    info = info_of(client)
    assert (info["source"], info["url"], info["fallback_reason"]) == ("cdn", f"{CDN}/{IMG}", None)
    assert info["generation"] == sim.manifest()["generation"]


def test_within_the_ttl_no_request_in_this_process_or_another(replica: Make, sim: CdnSimulator,
                                                              clock: Clock) -> None:
    client = replica()
    image = client.get_model_reference("image_generation")
    sim.clear()
    clock.advance(59)
    assert client.get_model_reference("image_generation") is image
    other = replica()  # another process sharing the cache folder
    assert thaw(other.get_model_reference("image_generation")) == thaw(image)
    assert sim.log() == []


def test_after_the_ttl_one_conditional_request_answered_304(replica: Make, sim: CdnSimulator,
                                                            clock: Clock) -> None:
    client = replica()
    image = client.get_model_reference("image_generation")
    sim.clear()
    clock.advance(61)
    assert client.get_model_reference("image_generation") is image
    assert sim.fetches == [Fetch("cdn", M, 304, True)]
    assert client.source_info()["sources"][CDN + "/api"]["last_status"] == 304
    # overwrite_existing and refresh() ignore the TTL: one conditional request each
    client.get_model_reference("image_generation", overwrite_existing=True)
    client.refresh(["image_generation"])
    assert sim.log() == [("cdn", M, 304)] * 3


def test_a_rebuild_downloads_only_the_changed_category(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    client = replica()
    client.get_model_reference("image_generation")
    text = client.get_model_reference("text_generation")
    gen = sim.manifest()["generation"]
    records = sim.document("image_generation")
    key = next(iter(records))
    records[key]["description"] = "Edited by a rebuild."
    sim.update_document(CDN, "image_generation", records)
    sim.clear()
    clock.advance(61)
    image = client.get_model_reference("image_generation")
    assert client.get_model_reference("text_generation") is text  # same sha256: not downloaded, not re-parsed
    assert image[key]["description"] == "Edited by a rebuild."
    assert sim.log() == [("cdn", M, 200), ("cdn", IMG, 200)]
    info = client.source_info()
    assert info["generation"] == gen + 1
    assert info["categories"]["text_generation"]["generation"] == gen + 1  # the same bytes, confirmed current
    # another process picks the new generation up from the shared cache: one 304, the copy from disk
    sim.clear()
    clock.advance(61)
    assert thaw(replica().get_model_reference("image_generation")) == thaw(image)
    assert sim.log() == [("cdn", M, 304)]
    assert assert_cache_sound(client.config.base_path.parent)["generation"] == gen + 1


def test_legacy_documents(replica: Make, sim: CdnSimulator) -> None:
    client = replica()
    raw = client.get_legacy("image_generation")
    assert raw == sim.hosts[CDN][v1_key("image_generation")]
    assert client.get_legacy("stable_diffusion") is raw  # the v1 alias names the same category
    assert client.get_legacy("lora") == b"{}"  # managed elsewhere: v1 answers {}
    assert sim.log() == [("cdn", M, 200), ("cdn", v1_key("image_generation"), 200), ("cdn", v1_key("lora"), 200)]


def test_offline_reads_only_the_cache(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    replica().get_model_reference("image_generation")
    sim.clear()
    clock.advance(3600)  # long stale: offline still serves it, and asks nobody
    offline = replica(offline=True)
    assert thaw(offline.get_model_reference("image_generation")) == sim.document("image_generation")
    assert offline.get_model_reference_or_none("text_generation") is None  # never fetched online
    assert sim.log() == []


def test_unwritable_cache_folder_keeps_working_in_memory(replica: Make, sim: CdnSimulator, clock: Clock,
                                                         tmp_path: Any) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    client = replica(home=blocker)
    assert thaw(client.get_model_reference("image_generation")) == sim.document("image_generation")
    clock.advance(61)
    client.get_model_reference("image_generation")  # the validators were kept in memory: conditional
    assert sim.log() == [("cdn", M, 200), ("cdn", IMG, 200), ("cdn", M, 304)]
    assert "not writable" in client.source_info()["cache_error"]


# ---------------------------------------------------------------------------------------------------
# trust: what is refused, and that nothing refused reaches the cache


def flip(body: bytes) -> bytes:
    i = len(body) // 2
    return body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]


DOCUMENT_FAULTS = {
    "corrupt": (flip, "sha256"),
    "truncated": (lambda b: b[: len(b) // 2], "differs from the manifest's"),
    "captive-portal": (b"<!DOCTYPE html><html><body>Sign in</body></html>", "differs from the manifest's"),
    "empty": (b"{}", "size 2 differs"),
}


@pytest.mark.parametrize("case", DOCUMENT_FAULTS)
def test_a_document_that_fails_its_manifest_entry_is_refused(replica: Make, sim: CdnSimulator, case: str) -> None:
    transform, why = DOCUMENT_FAULTS[case]
    sim.tamper(f"{CDN}/{IMG}", transform)
    client = replica(github=True)  # cold cache: GitHub answers instead
    assert thaw(client.get_model_reference("image_generation")) == sim.document("image_generation")
    assert sim.log() == [("cdn", M, 200), ("cdn", IMG, 200), ("github", GH_IMAGE, 200)]
    info = info_of(client)
    assert info["source"] == "github" and why in info["fallback_reason"], info["fallback_reason"]
    state = assert_cache_sound(client.config.base_path.parent)
    assert "v2/image_generation" not in state["site"]  # nothing from the faulty CDN was kept


def test_a_document_that_is_not_an_object_of_records_is_refused(replica: Make, sim: CdnSimulator) -> None:
    """Consistent with its manifest entry (a broken build), but not records: refused by its shape."""
    good = replica().get_model_reference("image_generation")
    body = b"[1, 2, 3]"
    entry = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    sim.edit_manifest(CDN, lambda m: m["files"].update({IMG: entry}))
    sim.hosts[CDN][IMG] = body
    client = replica(cache_ttl_seconds=0)
    assert client.get_model_reference("image_generation") == good
    assert info_of(client)["source"] == "cache" and "not a JSON object (list)" in info_of(client)["fallback_reason"]


@pytest.mark.parametrize(("kept", "refused"), [(0.6, False), (0.4, True), (0.0, True)])
def test_shrink_protection(replica: Make, sim: CdnSimulator, clock: Clock, kept: float, refused: bool) -> None:
    """A rebuild keeping fewer than half the models (default shrink_ratio 0.5) is refused; 60 % is not."""
    client = replica()
    good = thaw(client.get_model_reference("image_generation"))
    smaller = dict(list(good.items())[: int(len(good) * kept)])
    sim.update_document(CDN, "image_generation", smaller)
    sim.clear()
    clock.advance(61)
    got = thaw(client.get_model_reference("image_generation"))
    assert sim.log() == [("cdn", M, 200), ("cdn", IMG, 200)]
    info = info_of(client)
    if refused:
        assert got == good and info["source"] == "cache"
        assert f"{len(smaller)} models where the cached copy has {len(good)}" in info["fallback_reason"]
        assert client.source_info()["sources"][CDN + "/api"]["circuit_open_until"] is None  # a document, not the CDN
    else:
        assert got == smaller and info["source"] == "cdn"


def test_an_emptied_category_falls_back_to_github_when_it_is_on(replica: Make, sim: CdnSimulator,
                                                                clock: Clock) -> None:
    good = thaw(replica().get_model_reference("image_generation"))
    sim.update_document(CDN, "image_generation", {})
    clock.advance(61)
    client = replica(github=True)
    assert thaw(client.get_model_reference("image_generation")) == good
    assert info_of(client)["source"] == "github"
    state = assert_cache_sound(client.config.base_path.parent)
    assert state["site"]["v2/image_generation"]["count"] == len(good)  # the good site copy was never replaced


def test_a_lower_generation_is_refused_and_opens_the_breaker(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    sim.edit_manifest(CDN, lambda m: None, bump=6)
    client = replica(breaker_cooldown=300)
    good = client.get_model_reference("image_generation")
    gen = sim.manifest()["generation"]
    assert gen == 7
    sim.edit_manifest(CDN, lambda m: None, bump=-1)  # a CDN node, or an attacker, serving an older build
    sim.clear()
    clock.advance(61)
    assert client.get_model_reference("image_generation") == good
    assert sim.log() == [("cdn", M, 200)]  # refused on the manifest: no document was asked for
    assert f"generation {gen - 1} is lower than the cached {gen}" in info_of(client)["fallback_reason"]
    assert assert_cache_sound(client.config.base_path.parent)["generation"] == gen
    sim.clear()
    clock.advance(61)
    client.get_model_reference("image_generation")
    assert sim.log() == []  # the breaker: the refused CDN is not asked again during the cooldown
    assert "circuit open" in info_of(client)["fallback_reason"]


def test_an_equal_generation_with_other_bytes_is_accepted(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    """Rollback protection refuses older generations only: a re-run of the same build is current."""
    client = replica()
    client.get_model_reference("image_generation")
    sim.edit_manifest(CDN, lambda m: m.update(built_at="2030-01-01T00:00:00Z"), bump=0)
    clock.advance(61)
    client.get_model_reference("image_generation")
    assert info_of(client)["source"] == "cdn" and client.source_info()["manifest"]["built_at"] == "2030-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------------
# signatures


@pytest.fixture
def signing_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, base64.b64encode(public_bytes(key.public_key())).decode()


def test_a_signed_manifest_is_verified(replica: Make, sim: CdnSimulator, site_files: dict[str, bytes], clock: Clock,
                                       signing_key: tuple[Ed25519PrivateKey, str]) -> None:
    key, public = signing_key
    sim.publish_site(CDN, site_files, key=key)
    client = replica(trusted_keys=(public,))
    good = client.get_model_reference("image_generation")
    assert sim.log() == [("cdn", M, 200), ("cdn", SIG, 200), ("cdn", IMG, 200)]
    info = client.source_info()
    assert info["manifest"]["signed_by"] == key_id(public_bytes(key.public_key()))
    assert info["config"]["signature_required"] is True

    def tampered(body: bytes) -> bytes:  # e.g. a CDN edge rewriting a hash: same shape, other bytes
        doc = orjson.loads(body)
        doc["files"][IMG]["sha256"] = "0" * 64
        return orjson.dumps(doc)

    sim.tamper(f"{CDN}/{M}", tampered)
    clock.advance(61)
    assert client.get_model_reference("image_generation") == good
    assert info_of(client)["source"] == "cache"
    assert "does not match the manifest" in info_of(client)["fallback_reason"]
    state = assert_cache_sound(client.config.base_path.parent)
    assert state["manifest"]["sha256"] == hashlib.sha256(site_files[M]).hexdigest()


@pytest.mark.parametrize(("case", "why"), [("untrusted-key", "untrusted key"), ("missing", "HTTP 404"),
                                           ("garbage", "malformed signature")])
def test_a_bad_signature_is_refused(replica: Make, sim: CdnSimulator, site_files: dict[str, bytes],
                                    signing_key: tuple[Ed25519PrivateKey, str], case: str, why: str) -> None:
    _key, public = signing_key
    sim.publish_site(CDN, site_files, key=Ed25519PrivateKey.generate() if case == "untrusted-key" else None)
    if case == "garbage":
        sim.hosts[CDN][SIG] = b"not a signature"
    client = replica(trusted_keys=(public,))
    assert client.get_model_reference_or_none("image_generation") is None
    assert sim.log() == [("cdn", M, 200), ("cdn", SIG, 404 if case == "missing" else 200)]
    assert why in info_of(client)["fallback_reason"]
    with_github = replica(github=True, trusted_keys=(public,))
    assert thaw(with_github.get_model_reference("image_generation")) == sim.document("image_generation")
    state = assert_cache_sound(client.config.base_path.parent)
    assert state["manifest"] is None and state["site"] == {}


# ---------------------------------------------------------------------------------------------------
# the circuit breaker: a failing source costs one attempt per cooldown


def test_a_failing_manifest_opens_the_breaker_until_the_cooldown_ends(replica: Make, sim: CdnSimulator,
                                                                      clock: Clock) -> None:
    client = replica(breaker_cooldown=300)
    good = client.get_model_reference("image_generation")
    sim.fail(f"{CDN}/{M}", 503)
    sim.clear()
    clock.advance(61)
    assert client.get_model_reference("image_generation") == good
    assert sim.log() == [("cdn", M, 503)]
    assert "HTTP 503" in info_of(client)["fallback_reason"]
    src = client.source_info()["sources"][CDN + "/api"]
    assert (src["last_status"], src["failures"], src["last_error"]) == (503, 1, "HTTP 503")
    assert src["circuit_open_until"] is not None
    sim.heal()
    sim.clear()
    clock.advance(200)  # TTL over, cooldown not
    client.get_model_reference("image_generation")
    assert sim.log() == []
    assert "circuit open" in info_of(client)["fallback_reason"]
    clock.advance(101)  # cooldown over: asked again, conditionally, and the breaker closes
    client.get_model_reference("image_generation")
    assert sim.log() == [("cdn", M, 304)]
    src = client.source_info()["sources"][CDN + "/api"]
    assert (src["failures"], src["circuit_open_until"], info_of(client)["source"]) == (0, None, "cdn")


def test_retry_after_extends_the_cooldown(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    client = replica(breaker_cooldown=10)
    client.get_model_reference("image_generation")
    sim.fail(f"{CDN}/{M}", 429, retry_after="600")
    clock.advance(61)
    client.get_model_reference("image_generation")
    sim.heal()
    sim.clear()
    clock.advance(500)
    client.get_model_reference("image_generation")
    assert sim.log() == []  # the server asked for 600 s of peace: the cache serves meanwhile
    clock.advance(101)
    client.get_model_reference("image_generation")
    assert sim.log() == [("cdn", M, 304)]


def test_a_missing_document_does_not_open_the_breaker(replica: Make, sim: CdnSimulator) -> None:
    """A 404 says the document is not there, not that the CDN is down: the other categories still come
    from the CDN in the same refresh."""
    sim.fail(f"{CDN}/{IMG}", 404)
    client = replica(github=True)
    refs = client.get_all_model_references_or_none()
    assert refs["text_generation"] is not None and info_of(client, "text_generation")["source"] == "cdn"
    assert info_of(client)["source"] == "github" and "HTTP 404" in info_of(client)["fallback_reason"]
    assert client.source_info()["sources"][CDN + "/api"]["circuit_open_until"] is None


@pytest.mark.parametrize("failure", ["timeout", "refused", 500])
def test_an_unhealthy_cdn_is_not_retried_in_the_same_refresh(replica: Make, sim: CdnSimulator,
                                                            failure: str | int) -> None:
    if isinstance(failure, int):
        sim.fail(f"{CDN}/{IMG}", failure)
    else:
        sim.fail(f"{CDN}/{IMG}", transport=failure)
    client = replica(github=True)
    refs = client.get_all_model_references_or_none()
    cdn = [key for host, key, _status in sim.log() if host == "cdn"]
    # the categories before image_generation came from the CDN; after its failure, none was asked for
    assert cdn[-1] == IMG and cdn.count(IMG) == 1 and TXT not in cdn
    assert info_of(client, "clip")["source"] == "cdn"
    assert info_of(client)["source"] == "github" and info_of(client, "text_generation")["source"] == "github"
    assert "not retried in this refresh" in info_of(client, "text_generation")["fallback_reason"]
    assert thaw(refs["text_generation"]) == sim.document("text_generation")
    # a category after the failure with neither a GitHub file nor a cached copy waits for the next refresh
    assert refs["video_generation"] is None


def test_a_dead_cdn_costs_one_request_per_refresh(replica: Make, sim: CdnSimulator) -> None:
    sim.fail(f"{CDN}/{M}", transport="timeout")
    client = replica(github=True)
    refs = client.get_all_model_references_or_none()
    assert [e for e in sim.log() if e[0] == "cdn"] == [("cdn", M, None)]
    for cat in ("image_generation", "text_generation", "clip", "controlnet", "miscellaneous"):
        assert thaw(refs[cat]) == sim.document(cat), cat
    assert refs["controlnet_annotator"] is None and refs["lora"] is None  # no GitHub file, no cached copy
    assert "timed out after 0.5s" in info_of(client)["fallback_reason"]


def test_a_hanging_github_costs_one_request_per_refresh(replica: Make, sim: CdnSimulator) -> None:
    for path in sim.hosts[GITHUB]:
        sim.fail(f"{GITHUB}/{path}", transport="timeout")
    client = replica(github=True, primary_api_url=None)
    refs = client.get_all_model_references_or_none()
    assert len(sim.log()) == 1 and all(v is None for v in refs.values())
    assert "not retried in this refresh" in info_of(client, "text_generation")["fallback_reason"]


# ---------------------------------------------------------------------------------------------------
# the order of the chain


def test_cdn_then_mirror(replica: Make, sim: CdnSimulator, site_files: dict[str, bytes]) -> None:
    sim.publish_site(MIRROR, site_files)
    sim.fail(f"{CDN}/{M}", transport="refused")
    client = replica(mirror_urls=(MIRROR + "/api",))
    assert thaw(client.get_model_reference("text_generation")) == sim.document("text_generation")
    assert sim.log() == [("cdn", M, None), ("mirror", M, 200), ("mirror", TXT, 200)]
    info = info_of(client, "text_generation")
    assert info["source"] == "mirror" and info["url"] == f"{MIRROR}/{TXT}"
    assert "ConnectionRefusedError" in info["fallback_reason"]
    assert client.source_info()["manifest"]["source"] == "mirror"


def test_every_source_in_order_then_the_last_good_copy(replica: Make, sim: CdnSimulator, clock: Clock,
                                                       site_files: dict[str, bytes]) -> None:
    sim.publish_site(MIRROR, site_files)
    client = replica(github=True, mirror_urls=(MIRROR + "/api",))
    good = client.get_model_reference("image_generation")
    sim.fail(f"{CDN}/{M}", 500)
    sim.fail(f"{MIRROR}/{M}", transport="reset")
    sim.fail(f"{GITHUB}/{GH_IMAGE}", 502)
    sim.clear()
    clock.advance(61)
    assert client.get_model_reference("image_generation") == good
    assert sim.log() == [("cdn", M, 500), ("mirror", M, None), ("github", GH_IMAGE, 502)]
    info = info_of(client)
    assert (info["source"], info["cached_from"]) == ("cache", "cdn")
    reason = info["fallback_reason"]
    assert reason.index("cdn ") < reason.index("mirror ") < reason.index("github: HTTP 502")
    # a cold cache has nothing to fall back to
    cold = replica(github=True, mirror_urls=(MIRROR + "/api",), home=client.config.base_path.parent / "cold",
                   breaker_cooldown=0)
    with pytest.raises(SourceUnavailable) as e:
        cold.get_model_reference("image_generation")
    assert "HTTP 500" in str(e.value) and "ConnectionResetError" in str(e.value) and "HTTP 502" in str(e.value)
    assert cold.source_info()["categories"]["image_generation"]["source"] is None


def test_the_manifest_not_listing_a_category(replica: Make, sim: CdnSimulator) -> None:
    sim.edit_manifest(CDN, lambda m: [m["files"].pop(k) for k in (IMG, v2_file("image_generation"))], bump=0)
    client = replica(github=True)
    client.get_model_reference("image_generation")
    assert sim.log() == [("cdn", M, 200), ("github", GH_IMAGE, 200)]
    assert f"the manifest lists no {IMG}" in info_of(client)["fallback_reason"]
