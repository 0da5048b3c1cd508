"""`query(category)` and `query_all()`: the old client's filter, sort and page semantics over the read-only
records, checked against 8.6.2 itself (the same queries run by both clients over the corpus site), and
`hmr get` with filters."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from builder.replica import ReplicaClient, SourceUnavailable
from builder.routes import v2_key
from tests.helpers import run_hmr
from tests.replica.simulator import CDN, CdnSimulator

Make = Callable[..., ReplicaClient]

#: (category, [(method, args, kwargs), ...], result): run by our client and by 8.6.2, compared
QUERIES: list[tuple[str, list[tuple[str, list, dict]], str]] = [
    ("image_generation", [("where", [], {"nsfw": False})], "names"),
    ("image_generation", [("where", [], {"nsfw": True}), ("order_by", ["name"], {})], "names"),
    ("image_generation", [("where", [], {"baseline": "stable_diffusion_xl"}), ("order_by", ["size_on_disk_bytes"],
                                                                               {"descending": True})], "names"),
    ("image_generation", [("for_baseline", ["stable_diffusion_1"], {}), ("exclude_nsfw", [], {}),
                          ("offset", [3], {}), ("limit", [5], {})], "names"),
    ("image_generation", [("tags_any", [["anime", "realistic"]], {})], "names"),
    ("image_generation", [("tags_all", [["anime", "cartoon"]], {})], "names"),
    ("image_generation", [("tags_none", [["anime"]], {}), ("count", [], {})], "value"),
    ("image_generation", [("only_inpainting", [], {})], "names"),
    ("image_generation", [("exclude_inpainting", [], {}), ("count", [], {})], "value"),
    ("image_generation", [("where", [], {"size_on_disk_bytes__gt": 5_000_000_000})], "names"),
    ("image_generation", [("where", [], {"baseline": ["stable_diffusion_xl", "stable_cascade"]})], "names"),
    ("image_generation", [("where", [], {"style__ne": "generalist"}), ("order_by", ["style"], {})], "names"),
    ("image_generation", [("distinct", ["baseline"], {})], "value"),
    ("image_generation", [("order_by", ["size_on_disk_bytes"], {}), ("first", [], {})], "name"),
    ("text_generation", [("for_backend", ["koboldcpp"], {})], "names"),
    ("text_generation", [("exclude_backend_variations", [], {}), ("count", [], {})], "value"),
    ("text_generation", [("only_quantized", [], {})], "names"),
    ("text_generation", [("exclude_quantized", [], {}), ("count", [], {})], "value"),
    ("text_generation", [("where", [], {"nsfw": True}), ("order_by", ["name"], {}), ("limit", [20], {})], "names"),
    ("text_generation", [("where", [], {"baseline": "mistralai/Mistral-7B-v0.1"})], "names"),
    ("controlnet", [("for_style", ["control_canny"], {})], "names"),
    ("clip", [("order_by", ["name"], {"descending": True})], "names"),
]

ORACLE = r"""
import json, sys
from horde_model_reference import ModelReferenceManager

manager = ModelReferenceManager()
out = []
for category, steps, kind in json.loads(sys.argv[1]):
    q = manager.query(category)
    for method, args, kwargs in steps:
        q = getattr(q, method)(*args, **kwargs)
    if kind == "names":
        q = [r.name for r in q.to_list()]
    elif kind == "name":
        q = None if q is None else q.name
    out.append(q)
print("ORACLE " + json.dumps(out, default=str))
"""


def run_ours(client: ReplicaClient) -> list[Any]:
    out: list[Any] = []
    for category, steps, kind in QUERIES:
        q: Any = client.query(category)
        for method, args, kwargs in steps:
            q = getattr(q, method)(*args, **kwargs)
        if kind == "names":
            q = [r["name"] for r in q.to_list()]
        elif kind == "name":
            q = None if q is None else q["name"]
        out.append(q)
    return out


def test_queries_answer_as_the_existing_client(client_python: Path, served: tuple[object, int],
                                               replica: Make, tmp_path: Path) -> None:
    _server, port = served
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_MODEL_REFERENCE_")}
    env.update({"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": f"http://127.0.0.1:{port}/api",
                "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false",
                "HORDE_MODEL_REFERENCE_REPLICATE_MODE": "REPLICA", "AIWORKER_CACHE_HOME": str(tmp_path / "old")})
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(client_python), "-c", ORACLE, json.dumps(QUERIES)], capture_output=True, text=True,
                       env=env, timeout=300, cwd=tmp_path)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("ORACLE ")]
    assert r.returncode == 0 and lines, r.stderr[-2000:]
    theirs = json.loads(lines[-1][len("ORACLE "):])
    ours = run_ours(replica())
    for (category, steps, _), a, b in zip(QUERIES, ours, theirs, strict=True):
        assert a == b, (category, steps)
    # the queries are not vacuous
    assert sum(1 for a in ours if a) >= len(QUERIES) - 3


def test_query_is_lazy_immutable_and_read_only(replica: Make, sim: CdnSimulator) -> None:
    client = replica()
    base = client.query("image_generation")
    sfw = base.exclude_nsfw()
    assert base.count() == len(sim.document("image_generation")) > sfw.count() > 0
    rec = sfw.first()
    assert isinstance(rec, MappingProxyType) and rec["nsfw"] is False
    assert sfw.keys() == list(sfw.to_dict())
    assert sfw.limit(2).offset(1).keys() == sfw.keys()[1:3]
    assert sfw.limit(2).total() == sfw.count()
    assert len(list(sfw)) == len(sfw)
    groups = base.group_by("nsfw")
    assert set(groups) == {True, False} and len(groups[False]) == sfw.count()


def test_query_refuses_what_the_existing_client_refuses(replica: Make) -> None:
    q = replica().query("image_generation")
    with pytest.raises(ValueError, match="does not exist"):
        q.where(nsfww=False)
    with pytest.raises(ValueError, match="does not exist"):
        q.order_by("sizes")
    with pytest.raises(ValueError, match="unknown backend"):
        replica().query("text_generation").for_backend("vllm")
    with pytest.raises(ValueError, match="not mutually comparable"):
        q.where(name__in=["stable_diffusion", "AlbedoBase XL (SDXL)"]).order_by("config").to_list()
    with pytest.raises(ValueError, match="missing key"):
        q.where(config__nothing=1).to_list()
    with pytest.raises(ValueError, match="unhashable"):
        q.distinct("config")


def test_search_parameters_and_query_all(replica: Make, sim: CdnSimulator) -> None:
    client = replica()
    image = sim.document("image_generation")
    want = [k for k, r in image.items() if not r["nsfw"] and {"anime", "booru"} & set(r.get("tags") or [])
            and "an" in r["name"].lower()]
    got = client.query("image_generation").search(nsfw=False, tags_any=["anime", "booru"], name_contains="AN",
                                                  sort_by="name").keys()
    assert got == sorted(want, key=lambda k: image[k]["name"]) and got
    everything = client.query_all()
    total = sum(len(v) for v in client.get_all_model_references().values())
    assert everything.count() == total
    assert everything.where(record_type="clip").count() == len(sim.document("clip"))  # defaults per category
    big = everything.where(size_on_disk_bytes__gte=10**10).keys()
    assert big and all(k in image or k in sim.document("text_generation") for k in big)
    assert everything.tags_any(["anime"]).count() == client.query("image_generation").tags_any(["anime"]).count()


def test_query_of_a_category_no_source_has(replica: Make, sim: CdnSimulator) -> None:
    sim.fail(f"{CDN}/{v2_key('clip')}", 404)
    with pytest.raises(SourceUnavailable):
        replica().query("clip")
    assert replica().query_all().where(record_type="clip").count() == 0


def test_hmr_get_filters(served: tuple[object, int], tmp_path: Path, site_dir: Path) -> None:
    _server, port = served
    env = {"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": f"http://127.0.0.1:{port}/api",
           "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false", "AIWORKER_CACHE_HOME": str(tmp_path)}
    image = json.loads((site_dir / "api/model_references/v2/image_generation.json").read_bytes())
    r = run_hmr("get", "image_generation", "--sfw", "--baseline", "stable_diffusion_xl", "--sort-by",
                "size_on_disk_bytes", "--desc", "--limit", "3", env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    want = sorted((k for k, v in image.items() if not v["nsfw"] and v["baseline"] == "stable_diffusion_xl"),
                  key=lambda k: image[k].get("size_on_disk_bytes") or 0, reverse=True)[:3]
    assert list(got) == want and got[want[0]] == image[want[0]]
    r = run_hmr("get", "image_generation", "--tag-any", "anime", "--tag-none", "furry", "--count", env=env)
    assert r.returncode == 0 and int(r.stdout) == sum(
        1 for v in image.values() if "anime" in (v.get("tags") or []) and "furry" not in (v.get("tags") or []))
    r = run_hmr("get", "all", "--where", "size_on_disk_bytes__gt=10000000000", "--keys", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)
    r = run_hmr("get", "image_generation", "--where", "nsfww=true", env=env)
    assert r.returncode != 0 and "nsfww" in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    r = run_hmr("get", "image_generation", "--legacy", "--sfw", env=env)
    assert r.returncode != 0 and "--legacy" in r.stderr
