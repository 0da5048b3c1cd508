"""Offline from a cache the existing library wrote: 8.6.2 itself fills `AIWORKER_CACHE_HOME` from
`hmr serve`, then our client, offline and with no copy of its own, serves every category from those
files (reported unverified), and a damaged one is ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from builder.categories import NAMES
from builder.replica import ReplicaClient, thaw
from tests.site_support import run_client

Make = Callable[..., ReplicaClient]


def test_offline_reads_what_8_6_2_wrote(client_python: Path, served: tuple[object, int], site_dir: Path,
                                        tmp_path: Path) -> None:
    _server, port = served
    home = tmp_path / "worker"
    probe = run_client(client_python, f"http://127.0.0.1:{port}/api", home)
    assert probe["stats"]["github_fallbacks"] == 0
    assert not (home / "horde_model_reference" / "replica").exists()  # nothing of ours yet
    client = ReplicaClient(env={}, cache_home=home, offline=True)
    everything = client.get_all_model_references()
    for cat in NAMES:
        site = site_dir / f"api/model_references/v2/{cat}.json"
        want = orjson.loads(site.read_bytes()) if site.exists() and cat not in ("lora", "ti") else {}
        assert thaw(everything[cat]) == want, cat
    info = client.source_info()["old_client_cache"]
    assert info["image_generation"]["path"].endswith("horde_model_reference/stable_diffusion.json")
    assert info["image_generation"]["models"] == len(everything["image_generation"]) > 100
    assert info["image_generation"]["verified"] is False
    # the files are only read, never rewritten
    old = home / "horde_model_reference" / "stable_diffusion.json"
    before = (old.stat().st_mtime_ns, old.read_bytes())
    ReplicaClient(env={}, cache_home=home, offline=True).get_model_reference("image_generation")
    assert (old.stat().st_mtime_ns, old.read_bytes()) == before


def test_a_damaged_old_file_is_ignored_and_our_copy_wins(replica: Make, tmp_path: Path) -> None:
    old = tmp_path / "cache" / "horde_model_reference"
    old.mkdir(parents=True)
    (old / "clip.json").write_bytes(b'{"x": {"name": "x"}}')
    (old / "blip.json").write_bytes(b"<html>captive portal</html>")
    offline = replica(offline=True)
    assert thaw(offline.get_model_reference("clip")) == {"x": {"name": "x"}}
    assert offline.get_model_reference_or_none("blip") is None
    # once our client has its own copy, the old file is not used
    online = replica()
    real = thaw(online.get_model_reference("clip"))
    assert thaw(replica(offline=True).get_model_reference("clip")) == real != {"x": {"name": "x"}}
