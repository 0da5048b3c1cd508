"""Plain-API sources: a site without a manifest (the old PRIMARY, the client's default URL today) is read
the way the old client read it, one conditional GET per document, checked for shape and shrink only and
reported unverified; with a manifest the verified path stays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.categories import NAMES
from builder.replica import ReplicaClient, thaw
from builder.replica.client import PLAIN_RECHECK
from builder.routes import MANIFEST_FILE, v1_key, v2_key
from builder.signing import public_bytes
from tests.replica.simulator import CDN, GITHUB, CdnSimulator, Clock
from tests.replica_support import FaultServer, files_origin

Make = Callable[..., ReplicaClient]
DEFAULT_ROOT = "https://models.aihorde.net"


def plain(site_files: dict[str, bytes]) -> dict[str, bytes]:
    """The site without its manifest: what the old PRIMARY serves (its API paths)."""
    return {k: v for k, v in site_files.items() if not k.startswith(MANIFEST_FILE)}


@pytest.fixture
def plain_sim(sim: CdnSimulator, site_files: dict[str, bytes]) -> CdnSimulator:
    sim.publish_site(CDN, plain(site_files))
    return sim


def test_every_category_from_a_source_without_manifest(replica: Make, plain_sim: CdnSimulator) -> None:
    client = replica(github=True)
    everything = client.get_all_model_references()
    for cat in NAMES:
        assert thaw(everything[cat]) == plain_sim.document(cat), cat
    log = plain_sim.log()
    assert log[0] == ("cdn", MANIFEST_FILE, 404)
    assert sorted(log[1:]) == sorted(("cdn", v2_key(c), 200) for c in NAMES)  # no GitHub, no manifest again
    info = client.source_info()
    clip = info["categories"]["clip"]
    assert clip["source"] == "cdn" and clip["verified"] is False and clip["fallback_reason"] is None
    assert clip["verification"].startswith("unverified")
    assert info["manifest"] is None


def test_no_change_refresh_is_conditional_and_transfers_no_body(replica: Make, plain_sim: CdnSimulator,
                                                                clock: Clock) -> None:
    client = replica(github=True)
    client.get_all_model_references()
    clock.advance(61)
    plain_sim.clear()
    before = (plain_sim.requests, plain_sim.body_bytes)
    client.get_all_model_references()
    assert plain_sim.log() == [("cdn", v2_key(c), 304) for c in NAMES]  # the manifest is not asked again
    assert all(f.conditional for f in plain_sim.fetches)
    assert (plain_sim.requests - before[0], plain_sim.body_bytes - before[1]) == (len(NAMES), 0)
    # a change on the server: only that category's bytes are transferred
    records = plain_sim.document("clip") | {"new-model": {"name": "new-model"}}
    plain_sim.hosts[CDN][v2_key("clip")] = orjson.dumps(records)
    clock.advance(61)
    plain_sim.clear()
    assert thaw(client.get_model_reference("clip")) == records
    assert plain_sim.log() == [("cdn", v2_key("clip"), 200)]
    # a new process on the same cache asks conditionally at once
    clock.advance(61)
    plain_sim.clear()
    other = replica(github=True)
    assert thaw(other.get_model_reference("clip")) == records
    assert plain_sim.log() == [("cdn", v2_key("clip"), 304)]


def test_legacy_from_a_source_without_manifest(replica: Make, plain_sim: CdnSimulator) -> None:
    client = replica(github=True)
    assert client.get_legacy("image_generation") == plain_sim.hosts[CDN][v1_key("image_generation")]
    assert [k for _h, k, _s in plain_sim.log()] == [MANIFEST_FILE, v1_key("image_generation")]


@pytest.mark.parametrize("bad", [b"<!doctype html><html>portal</html>", b"[1, 2]", b'{"a": 1}'])
def test_shape_check_falls_back(replica: Make, plain_sim: CdnSimulator, bad: bytes) -> None:
    plain_sim.tamper(f"{CDN}/{v2_key('clip')}", bad)
    client = replica(github=True)
    assert len(client.get_model_reference("clip")) > 0
    entry = client.source_info()["categories"]["clip"]
    assert entry["source"] == "github" and "cdn" in entry["fallback_reason"]


def test_shrink_protection(replica: Make, plain_sim: CdnSimulator, clock: Clock) -> None:
    client = replica()
    full = thaw(client.get_model_reference("image_generation"))
    assert len(full) > 10
    one = dict(list(full.items())[:1])
    plain_sim.hosts[CDN][v2_key("image_generation")] = orjson.dumps(one)
    clock.advance(61)
    assert thaw(client.get_model_reference("image_generation")) == full  # the last good copy
    entry = client.source_info()["categories"]["image_generation"]
    assert entry["source"] == "cache" and "shrank" in entry["fallback_reason"]


def test_a_manifest_appearing_later_switches_to_the_verified_path(replica: Make, plain_sim: CdnSimulator,
                                                                  site_files: dict[str, bytes],
                                                                  clock: Clock) -> None:
    client = replica()
    client.get_model_reference("clip")
    plain_sim.publish_site(CDN, site_files)
    clock.advance(61)
    plain_sim.clear()
    client.get_model_reference("clip")
    assert plain_sim.log() == [("cdn", v2_key("clip"), 304)]  # not re-probed before PLAIN_RECHECK
    clock.advance(PLAIN_RECHECK)
    plain_sim.clear()
    client.get_model_reference("clip")
    assert [k for _h, k, _s in plain_sim.log()] == [MANIFEST_FILE]  # same bytes: verified, not fetched again
    entry = client.source_info()["categories"]["clip"]
    assert entry["verified"] is True and client.source_info()["manifest"] is not None


def test_a_required_signature_forbids_the_plain_path(replica: Make, plain_sim: CdnSimulator) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    import base64

    client = replica(github=True, trusted_keys=base64.b64encode(public_bytes(key)).decode())
    client.get_model_reference("clip")
    entry = client.source_info()["categories"]["clip"]
    assert entry["source"] == "github" and "manifest: HTTP 404" in entry["fallback_reason"]
    assert ("cdn", v2_key("clip"), 200) not in plain_sim.log()


def test_the_default_configuration_needs_no_github(sim: CdnSimulator, site_files: dict[str, bytes],
                                                   clock: Clock, tmp_path: Path) -> None:
    sim.publish_site(DEFAULT_ROOT, plain(site_files))
    client = ReplicaClient(env={"AIWORKER_CACHE_HOME": str(tmp_path)}, fetcher=sim, clock=clock)
    assert client.config.enable_github_fallback
    everything = client.get_all_model_references()
    assert set(everything) == set(NAMES)
    assert {f.host for f in sim.fetches} == {DEFAULT_ROOT} and GITHUB not in {f.host for f in sim.fetches}
    assert all(e["source"] == "cdn" for e in client.source_info()["categories"].values())


def test_end_to_end_over_http(site_files: dict[str, bytes], tmp_path: Path) -> None:
    server = FaultServer(files_origin({"/" + k: v for k, v in plain(site_files).items()})).start()
    try:
        client = ReplicaClient(env={}, primary_api_url=server.base + "/api", cache_home=tmp_path,
                               cache_ttl_seconds=0.01, enable_github_fallback=False)
        with client:
            everything = client.get_all_model_references()
            for cat in NAMES:
                assert thaw(everything[cat]) == orjson.loads(site_files[v2_key(cat)]), cat
            client.refresh()
            info = client.source_info()
        assert info["last_refresh"]["requests"] == len(NAMES) and info["last_refresh"]["body_bytes"] == 0
        assert {e.status for e in server.log[-len(NAMES):]} == {304}
        assert len(server.requests_to("/" + MANIFEST_FILE)) == 1
    finally:
        server.stop()
