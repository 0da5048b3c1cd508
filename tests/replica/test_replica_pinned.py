"""The GitHub fallback is pinned to the source commit of the last good manifest: with the CDN failing
after a manifest naming commit C was accepted, the legacy files are read at `{owner}/{name}/C/{file}`,
never at the branch head, so a fallback cannot mix the site's generation with a newer upstream."""

from __future__ import annotations

import json
from collections.abc import Callable

from builder.replica import ReplicaClient
from builder.routes import v2_key
from tests.replica.simulator import CDN, GITHUB, CdnSimulator, Clock

Make = Callable[..., ReplicaClient]
COMMIT = "c" * 40
HEAD = "Haidra-Org/AI-Horde-image-model-reference/refs/heads/main/stable_diffusion.json"
PINNED = f"Haidra-Org/AI-Horde-image-model-reference/{COMMIT}/stable_diffusion.json"


def test_the_fallback_reads_github_at_the_manifest_commit(replica: Make, sim: CdnSimulator, clock: Clock) -> None:
    sim.edit_manifest(CDN, lambda m: m.update(source_commit=COMMIT))
    head = json.loads(sim.hosts[GITHUB][HEAD])
    pinned = dict(list(head.items())[:-1])  # the commit the site was built from: one model fewer than head
    sim.hosts[GITHUB][PINNED] = json.dumps(pinned).encode()
    client = replica(github=True)
    client.get_model_reference("clip")  # a good manifest naming COMMIT is accepted
    sim.fail(f"{CDN}/{v2_key('image_generation')}", 503)
    records = client.get_model_reference("image_generation")
    assert sorted(records) == sorted(pinned)
    info = client.source_info()["categories"]["image_generation"]
    assert info["source"] == "github" and info["url"] == f"{GITHUB}/{PINNED}" and info["source_commit"] == COMMIT
    assert HEAD not in [k for _h, k, _s in sim.log()]


def test_a_commit_the_legacy_repository_lacks_falls_back_to_the_head(replica: Make, sim: CdnSimulator) -> None:
    sim.edit_manifest(CDN, lambda m: m.update(source_commit=COMMIT))  # the site's data lives in another repo
    client = replica(github=True)
    client.get_model_reference("clip")
    sim.fail(f"{CDN}/{v2_key('image_generation')}", 503)
    client.get_model_reference("image_generation")
    info = client.source_info()["categories"]["image_generation"]
    assert info["source"] == "github" and info["url"] == f"{GITHUB}/{HEAD}" and info["source_commit"] is None
    assert "is not in the legacy repository" in info["fallback_reason"]
    assert [k for _h, k, s in sim.log() if s == 404] == [PINNED]


def test_without_a_manifest_the_head_is_read(replica: Make, sim: CdnSimulator) -> None:
    sim.fail(f"{CDN}/api/model_references/v2/manifest.json", transport="refused")
    client = replica(github=True)
    client.get_model_reference("image_generation")
    assert client.source_info()["categories"]["image_generation"]["url"] == f"{GITHUB}/{HEAD}"
