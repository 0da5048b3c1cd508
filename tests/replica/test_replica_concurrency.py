"""Eight processes refresh one cache folder (TTL 50 ms) while the site served by nginx is rebuilt underneath
them: every read is one of the published versions, byte for byte (never a half-written or mixed file), and
after the changes stop every process ends on the same, final generation; the cache is sound."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from builder.routes import v2_file
from tests.helpers import ROOT
from tests.replica_support import MutableSite, assert_cache_sound

PROCESSES = 8
WORKER = r"""
import hashlib, json, os, sys, time
from pathlib import Path
import orjson
from builder.replica import ReplicaClient, thaw

api, home, run = sys.argv[1], sys.argv[2], Path(sys.argv[3])
client = ReplicaClient(env={}, primary_api_url=api, cache_home=home, cache_ttl_seconds=0.05, timeout=10,
                       enable_github_fallback=False, breaker_cooldown=0)

def digest(records):
    # the build serialises a category with orjson in record order: equal data gives equal bytes
    return hashlib.sha256(orjson.dumps(thaw(records))).hexdigest()

reads, text_reads = [], set()
while True:
    reads.append(digest(client.get_model_reference("image_generation")))
    text_reads.add(digest(client.get_model_reference("text_generation")))
    if len(reads) == 1:
        (run / f"ready.{os.getpid()}").touch()
    if (run / "stop").exists():
        break
    time.sleep(0.005)
client.refresh(["image_generation", "text_generation"])  # the changes have stopped: a final check
info = client.source_info()
print(json.dumps({"reads": reads, "text": sorted(text_reads), "generation": info["generation"],
                  "final": digest(client.get_model_reference("image_generation")),
                  "source": info["categories"]["image_generation"]["source"]}))
"""


def published(site: MutableSite, category: str) -> str:
    return hashlib.sha256((site.site / v2_file(category)).read_bytes()).hexdigest()


def test_processes_share_one_cache_while_the_site_changes(mutable_site: MutableSite, tmp_path: Path) -> None:
    site = mutable_site
    run = tmp_path / "run"
    run.mkdir()
    home = tmp_path / "cache"
    versions = {published(site, "image_generation")}
    text_version = published(site, "text_generation")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, site.api, str(home), str(run)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(PROCESSES)]
    try:
        deadline = time.monotonic() + 60
        while len(list(run.glob("ready.*"))) < PROCESSES:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.05)
        key = site.keys("image_generation")[0]
        for i in range(4):  # the site changes underneath the readers
            site.edit("image_generation", key, f"Concurrent edit number {i} " + "x" * i)
            site.rebuild()
            versions.add(published(site, "image_generation"))
            time.sleep(0.15)
        final_generation = site.manifest()["generation"]
        final = published(site, "image_generation")
        (run / "stop").touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    assert len(versions) == 5
    seen = set()
    for r in results:
        assert set(r["reads"]) <= versions, "a read returned bytes that were never published"
        assert r["text"] == [text_version]
        assert r["generation"] == final_generation
        assert r["final"] == final
        assert r["source"] == "cdn"
        seen |= set(r["reads"])
    assert len(seen) >= 2, "the readers never saw the site change"
    print(f"{sum(len(r['reads']) for r in results)} reads, {len(seen)} versions seen")
    state = assert_cache_sound(home)
    assert state["generation"] == final_generation
