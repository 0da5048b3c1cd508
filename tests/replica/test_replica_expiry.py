"""Freeze detection and the anti-rollback rule: the build writes `expires` (renewed weekly, 14 days ahead);
the client uses an expired manifest and says so, refuses a signed one expired beyond the 14-day grace,
and an unsigned source's generation is a rollback floor for one expiry period at most."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.replica import ReplicaClient, thaw
from builder.replica.trust import EXPIRY_GRACE, UNSIGNED_FLOOR, parse_manifest
from builder.routes import MANIFEST_FILE
from builder.signing import public_bytes
from builder.site.manifest import EXPIRES_AFTER, RENEW_BELOW, make_manifest
from tests.replica.simulator import CDN, CdnSimulator, Clock

Make = Callable[..., ReplicaClient]
DAY = 86400.0
M = MANIFEST_FILE


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------
# the build


def test_the_build_writes_expires_and_renews_it_weekly() -> None:
    files = {"api/x.json": b"{}"}
    t0 = 1_750_000_000.0
    first, _ = make_manifest(files, None, None, source_time=t0)
    doc = json.loads(first)
    assert doc["expires"] == iso(t0 + EXPIRES_AFTER) == iso(t0 + 14 * DAY)
    assert parse_manifest(first).expires == t0 + EXPIRES_AFTER
    # nothing changed, more than RENEW_BELOW left: the same bytes (nothing is rewritten)
    same, _ = make_manifest(files, first, None, now=t0 + EXPIRES_AFTER - RENEW_BELOW - 60)
    assert same == first
    # less than 7 days left: renewed to today 00:00 UTC + 14 days, same generation
    now = t0 + 8 * DAY
    renewed, _ = make_manifest(files, first, None, now=now)
    r = json.loads(renewed)
    assert r["generation"] == doc["generation"] and r["built_at"] == doc["built_at"]
    assert r["expires"] == iso(now - now % DAY + 14 * DAY)
    assert make_manifest(files, first, None, now=now + 3600)[0] == renewed  # one day, one set of bytes
    # without a clock (SOURCE_DATE_EPOCH builds) it is a pure function of built_at
    assert make_manifest(files, None, None, source_date_epoch=1_700_000_000)[0] == \
        make_manifest(files, None, None, source_date_epoch=1_700_000_000)[0]


def test_a_manifest_with_a_bad_expires_is_refused() -> None:
    from builder.replica.errors import ManifestError

    raw = json.dumps({"generation": 1, "files": {}, "expires": "tomorrow"}).encode()
    with pytest.raises(ManifestError, match="expires"):
        parse_manifest(raw)


# ---------------------------------------------------------------------------------------------------
# the client


def set_expires(sim: CdnSimulator, ts: float, bump: int = 1) -> None:
    sim.edit_manifest(CDN, lambda m: m.update(expires=iso(ts)), bump=bump)


@pytest.fixture
def signing_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, base64.b64encode(public_bytes(key.public_key())).decode()


def test_an_expired_unsigned_manifest_is_used_and_reported(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    set_expires(sim, clock.now - 100 * DAY)
    client = replica()
    assert thaw(client.get_model_reference("image_generation")) == sim.document("image_generation")
    info = client.source_info()
    assert info["categories"]["image_generation"]["source"] == "cdn"
    assert info["manifest"]["expired"] is True and info["manifest"]["expired_seconds_ago"] == pytest.approx(100 * DAY)
    assert info["manifest"]["expires"].startswith(iso(clock.now - 100 * DAY)[:10])


def test_a_signed_manifest_is_refused_beyond_the_grace(replica: Make, sim: CdnSimulator, clock: Clock,
                                                      site_files: dict[str, bytes], tmp_path: Path,
                                                      signing_key: tuple[Ed25519PrivateKey, str]) -> None:
    key, public = signing_key
    sim.publish_site(CDN, site_files, key=key)
    set_expires(sim, clock.now + DAY)
    client = replica(trusted_keys=(public,), github=True, breaker_cooldown=10)
    good = client.get_model_reference("image_generation")
    assert client.source_info()["manifest"]["expired"] is False
    # within the grace: used, reported (confirmed by a 304)
    clock.advance(2 * DAY)
    assert client.get_model_reference("image_generation", overwrite_existing=True) == good
    info = client.source_info()
    assert info["categories"]["image_generation"]["source"] == "cdn" and info["manifest"]["expired"] is True
    # beyond it: refused, even confirmed unchanged by a 304 (a frozen site or a replay); GitHub serves
    clock.advance(EXPIRY_GRACE)
    sim.clear()
    client.get_model_reference("image_generation", overwrite_existing=True)
    info = client.source_info()["categories"]["image_generation"]
    assert info["source"] == "github" and "grace" in info["fallback_reason"]
    assert ("cdn", M, 304) in sim.log()
    # a fresh client refuses it on first sight too, before storing anything
    fresh = replica(trusted_keys=(public,), home=tmp_path / "fresh", github=True)
    assert thaw(fresh.get_model_reference("image_generation")) == thaw(good)
    assert fresh.source_info()["manifest"] is None
    assert fresh.source_info()["categories"]["image_generation"]["source"] == "github"
    # the site renews it: accepted again
    set_expires(sim, clock.now + 14 * DAY)
    clock.advance(11)
    client.get_model_reference("image_generation", overwrite_existing=True)
    assert client.source_info()["categories"]["image_generation"]["source"] == "cdn"


def test_an_unsigned_floor_lasts_one_expiry_period_at_most(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    honest = sim.manifest()["generation"]
    # a wrong source bumps the counter far ahead and claims to be valid for a year
    set_expires(sim, clock.now + 365 * DAY, bump=1000)
    client = replica(breaker_cooldown=10)
    client.get_model_reference("image_generation")
    state = client.source_info()
    assert state["generation"] == honest + 1000
    # the honest site is back, at its own counter: refused while the floor holds ...
    set_expires(sim, clock.now + 14 * DAY, bump=-999)
    clock.advance(61)
    client.get_model_reference("image_generation")
    assert "lower than the cached" in client.source_info()["categories"]["image_generation"]["fallback_reason"]
    # ... which a renewal of the wrong manifest at the same generation would not extend; after one
    # expiry period (not the year it claimed) the honest generation is accepted
    clock.advance(UNSIGNED_FLOOR)
    client.get_model_reference("image_generation")
    info = client.source_info()
    assert info["generation"] == honest + 1 and info["categories"]["image_generation"]["source"] == "cdn"
    assert info["categories"]["image_generation"]["fallback_reason"] is None


def test_an_unsigned_floor_ends_at_the_manifest_expiry(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    set_expires(sim, clock.now + 2 * DAY, bump=5)
    client = replica(breaker_cooldown=10)
    client.get_model_reference("image_generation")
    high = client.source_info()["generation"]
    # the same generation renewed: the floor does not move
    set_expires(sim, clock.now + 300 * DAY, bump=0)
    clock.advance(61)
    client.get_model_reference("image_generation")
    assert client.source_info()["generation"] == high
    set_expires(sim, clock.now + 14 * DAY, bump=-3)
    clock.advance(2 * DAY)
    client.get_model_reference("image_generation")
    assert client.source_info()["generation"] == high - 3


def test_a_signed_floor_holds_while_the_manifest_is_usable(replica: Make, sim: CdnSimulator, clock: Clock,
                                                          site_files: dict[str, bytes],
                                                          signing_key: tuple[Ed25519PrivateKey, str]) -> None:
    key, public = signing_key
    sim.publish_site(CDN, site_files, key=key)
    set_expires(sim, clock.now + 14 * DAY, bump=5)
    client = replica(trusted_keys=(public,), breaker_cooldown=10)
    client.get_model_reference("image_generation")
    high = client.source_info()["generation"]
    set_expires(sim, clock.now + 14 * DAY, bump=-3)  # an older signed build, replayed
    clock.advance(20 * DAY)  # beyond the UNSIGNED floor, within expires + grace
    client.get_model_reference("image_generation")
    assert client.source_info()["generation"] == high
    assert "lower than the cached" in client.source_info()["categories"]["image_generation"]["fallback_reason"]
