"""`get_model(category, old_key)` follows the site's renames table, fetched only on a miss and verified
against the manifest when the site has one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import orjson
import pytest

from builder.replica import ModelNotFound, ReplicaClient, thaw
from builder.routes import MANIFEST_FILE, RENAMES_FILE
from tests.replica.simulator import CDN, CdnSimulator, Clock

Make = Callable[..., ReplicaClient]


def publish_renames(sim: CdnSimulator, table: dict, *, manifest: bool = True) -> None:
    body = orjson.dumps(table)
    sim.hosts[CDN][RENAMES_FILE] = body
    if manifest:
        entry = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
        sim.edit_manifest(CDN, lambda m: m["files"].update({RENAMES_FILE: entry}))


def some_key(sim: CdnSimulator) -> str:
    return next(iter(sim.document("clip")))


def test_old_key_is_followed(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    new = some_key(sim)
    publish_renames(sim, {"clip": {"very-old": "old", "old": new}})
    client = replica()
    assert thaw(client.get_model("clip", new)) == sim.document("clip")[new]
    assert RENAMES_FILE not in [k for _h, k, _s in sim.log()]  # a hit never asks for the table
    sim.clear()
    assert thaw(client.get_model("clip", "very-old")) == sim.document("clip")[new]  # a chain of two
    assert [k for _h, k, _s in sim.log()] == [RENAMES_FILE]
    assert client.get_model_or_none("clip", "old") is not None
    with pytest.raises(ModelNotFound):
        client.get_model("clip", "never-existed")
    assert [k for _h, k, _s in sim.log()] == [RENAMES_FILE]  # once per TTL
    assert client.source_info()["renames_followed"] == {"clip": {"very-old": "old", "old": new}}
    assert client.get_model_or_none("image_generation", "old") is None  # renames are per category


def test_tampered_renames_are_refused(replica: Make, sim: CdnSimulator) -> None:
    publish_renames(sim, {"clip": {"old": some_key(sim)}})
    sim.tamper(f"{CDN}/{RENAMES_FILE}", orjson.dumps({"clip": {"old": "other"}}))
    client = replica()
    with pytest.raises(ModelNotFound):
        client.get_model("clip", "old")
    assert client.source_info()["renames_followed"] == {}


def test_renames_from_a_source_without_manifest(replica: Make, sim: CdnSimulator) -> None:
    del sim.hosts[CDN][MANIFEST_FILE]
    new = some_key(sim)
    publish_renames(sim, {"clip": {"old": new}}, manifest=False)
    client = replica()
    assert thaw(client.get_model("clip", "old")) == sim.document("clip")[new]


def test_async_follows_renames(replica: Make, sim: CdnSimulator) -> None:
    import asyncio

    new = some_key(sim)
    publish_renames(sim, {"clip": {"old": new}})
    client = replica()
    assert thaw(asyncio.run(client.get_model_async("clip", "old"))) == sim.document("clip")[new]
    assert asyncio.run(client.get_model_or_none_async("clip", "nope")) is None
