"""The old API's other read endpoints as static objects: `metadata/...` under v1 and v2 (values, times
from git / SOURCE_DATE_EPOCH / mtimes, the existing client's own model), `text_model_group` in the v2
text records (equal to the existing library's for all 719 corpus models) and the precomputed
`v1/text_generation?include_group=true` variant through `hmr serve` and nginx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.categories import CATEGORIES
from builder.legacy.textgroups import base_name, group_text_models_by_base, include_group, parse_name
from builder.routes import query_variant
from builder.site.catalog import INCLUDE_GROUP_FILE
from tests.site_support import REFERENCE_V2, ROOT, Http, load_manifest, run_hmr

V1 = "api/model_references/v1"
V2 = "api/model_references/v2"
BUNDLED = ROOT / "data"
FIELDS = ["category", "last_updated", "last_operation_type", "last_operation_model", "total_creates", "total_updates",
          "total_deletes", "total_models", "initialization_time", "last_successful_operation", "error_count",
          "metadata_schema_version", "backend_type"]


def read(site: Path, key: str) -> object:
    return json.loads((site / (key + ".json")).read_bytes())


def build(data: Path, out: Path, env: dict[str, str] | None = None) -> None:
    r = run_hmr("build", "--data", str(data), "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr


def newest_mtime(folder: Path) -> int:
    return int(max(p.stat().st_mtime for p in folder.rglob("*") if p.is_file()))


# ---------------------------------------------------------------------------------------------------
# metadata


def test_metadata_values_of_the_corpus_site(site_build: Path) -> None:
    site, data = site_build / "site", site_build / "data"
    for prefix in (V1, V2):
        every = read(site, f"{prefix}/metadata/metadata")
        assert list(every) == [c.name for c in CATEGORIES]
        for c in CATEGORIES:
            doc = read(site, f"{prefix}/metadata/{c.name}")
            assert list(doc) == FIELDS and every[c.name] == doc
            v2 = read(site, f"{V2}/{c.name}")
            assert doc["category"] == c.name and doc["total_models"] == len(v2)
            assert doc["backend_type"] == "StaticSite" and doc["metadata_schema_version"] == "1.0.0"
            assert doc["total_creates"] == doc["total_updates"] == doc["total_deletes"] == doc["error_count"] == 0
            assert isinstance(doc["last_updated"], int) and doc["last_successful_operation"] == doc["last_updated"]
            assert doc["initialization_time"] <= doc["last_updated"]
            # outside git and without SOURCE_DATE_EPOCH: the newest file time of data/<category>
            if (data / c.name).is_dir():
                assert doc["last_updated"] == newest_mtime(data / c.name), c.name
            assert read(site, f"{prefix}/metadata/{c.name}/last_updated") == {"category": c.name,
                                                                            "last_updated": doc["last_updated"]}
        assert read(site, f"{prefix}/metadata/last_updated") == {
            "last_updated": max(d["last_updated"] for d in every.values())}
    assert read(site, f"{V1}/metadata/metadata") == read(site, f"{V2}/metadata/metadata")
    counts = {c: read(site, f"{V2}/metadata/{c}")["total_models"] for c in ("image_generation", "text_generation")}
    assert counts == {"image_generation": 161, "text_generation": 719}


def test_metadata_is_what_the_existing_client_models(site_dir: Path, client_python: Path) -> None:
    # the client's own pydantic model (required int times, enum category) accepts every document
    docs = [str(p) for p in sorted((site_dir / V2 / "metadata").glob("*.json")) if p.stem in
            {c.name for c in CATEGORIES}]
    probe = (
        "import json, sys\n"
        "from horde_model_reference.model_reference_metadata import CategoryMetadata\n"
        "for p in sys.argv[1:]:\n"
        "    m = CategoryMetadata.model_validate_json(open(p, 'rb').read())\n"
        "    assert m.backend_type == 'StaticSite'\n"
        "print('OK', len(sys.argv) - 1)\n"
    )
    r = subprocess.run([str(client_python), "-c", probe, *docs], capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0 and r.stdout.strip() == f"OK {len(CATEGORIES)}", r.stderr[-2000:]


def test_metadata_times_from_source_date_epoch(tmp_path: Path) -> None:
    # outside git, SOURCE_DATE_EPOCH names the source's time: every category, and the same bytes twice
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    data = tmp_path / "data"
    shutil.copytree(BUNDLED, data)  # the repository's own data/ is in git
    build(data, tmp_path / "a", env)
    build(data, tmp_path / "b", env)
    for c in CATEGORIES:
        doc = read(tmp_path / "a", f"{V2}/metadata/{c.name}")
        assert doc["last_updated"] == doc["initialization_time"] == 1700000000, c.name
        assert (tmp_path / "a" / V1 / "metadata" / f"{c.name}.json").read_bytes() == \
            (tmp_path / "b" / V1 / "metadata" / f"{c.name}.json").read_bytes()
    assert read(tmp_path / "a", f"{V1}/metadata/last_updated") == {"last_updated": 1700000000}


def git(repo: Path, *args: str, when: int | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid")
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_metadata_times_from_the_git_history_of_each_category(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(BUNDLED, repo / "data")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data", when=1_600_000_000)
    deliberate = repo / "data" / "image_generation" / "Deliberate.yaml"
    deliberate.write_text(deliberate.read_text().replace("version: '2'", "version: '2.1'"))
    git(repo, "commit", "-q", "-am", "Deliberate 2.1", when=1_700_000_000)
    (repo / "README").write_text("not data\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "readme", when=1_800_000_000)  # outside data/: no category moves
    # SOURCE_DATE_EPOCH does not override the history (it dates what git cannot)
    build(repo / "data", tmp_path / "site", {"SOURCE_DATE_EPOCH": "1"})
    site = tmp_path / "site"
    image = read(site, f"{V2}/metadata/image_generation")
    assert (image["last_updated"], image["initialization_time"]) == (1_700_000_000, 1_600_000_000)
    clip = read(site, f"{V1}/metadata/clip")
    assert (clip["last_updated"], clip["initialization_time"]) == (1_600_000_000, 1_600_000_000)
    # a category without data or history: the data set's first time, not the latest change
    assert read(site, f"{V2}/metadata/lora")["last_updated"] == 1_600_000_000
    assert read(site, f"{V2}/metadata/last_updated") == {"last_updated": 1_700_000_000}
    assert read(site, f"{V1}/metadata/image_generation/last_updated") == {"category": "image_generation",
                                                                       "last_updated": 1_700_000_000}


def test_metadata_keys_are_published_and_served(site_dir: Path, served: tuple[object, int]) -> None:
    files = load_manifest(site_dir)["files"]
    http = Http(served[1])
    try:
        for prefix in (V1, V2):
            for key in (f"{prefix}/metadata/last_updated", f"{prefix}/metadata/metadata",
                        f"{prefix}/metadata/clip", f"{prefix}/metadata/clip/last_updated"):
                assert key in files and key + ".json" in files, key
                r = http.get_key(key)
                assert (r.status, r.headers["content-type"]) == (200, "application/json"), key
                assert r.json() == read(site_dir, key)
    finally:
        http.close()


# ---------------------------------------------------------------------------------------------------
# text_model_group and include_group


def test_text_model_group_equals_the_existing_library_for_all_719(site_dir: Path) -> None:
    ref = json.loads((REFERENCE_V2 / "text_generation.json").read_bytes())
    ours = read(site_dir, f"{V2}/text_generation")
    assert len(ref) == len(ours) == 719
    wrong = {k: (ref[k]["text_model_group"], ours[k].get("text_model_group")) for k in ref
             if ref[k]["text_model_group"] != ours[k].get("text_model_group")}
    assert not wrong
    # in the record's field order, as the reference writes it
    rec = ours["anthracite-org/magnum-12b-v2"]
    assert list(rec)[-1] == "text_model_group" and rec["text_model_group"] == "magnum"
    assert read(site_dir, f"{V2}/text_generation/model/acrastt/Marx-3B-V3")["text_model_group"] == "Marx"


def test_base_name_rules() -> None:
    cases = {
        "acrastt/Marx-3B-V3": "Marx",
        "anthracite-org/magnum-12b-v2": "magnum",
        "aetherwiing/MN-12B-Starcannon-v3": "MN-Starcannon",  # the doubled separator collapses
        "koboldcpp/Marx-3B-V3": "Marx", "aphrodite/acrastt/Marx-3B-V3": "Marx",  # backend prefixes
        "mistralai/Mixtral-8x22B-Instruct-v0.1": "Mixtral-8x2",  # the plain size is searched first
        "lizpreciatior/lzlv_70b_fp16_hf": "lzlv_fp16_hf",  # quant and variant tokens are whole words
        "SicariusSicariiStuff/Impish_QWEN_14B-1M": "Impish_QWEN_-1M",  # mixed separators stay
        "Org/3.1-Thing-7B-GGUF-Chat-2024": "Thing",  # leading version, size, quant, variant, date
        "7B": "7B",  # nothing left: the name itself
    }
    assert {n: base_name(n) for n in cases} == cases
    p = parse_name("magnum-12b-v2")
    assert (p.base, p.size, p.version, p.quant) == ("magnum", "12B", "v2", None)
    assert group_text_models_by_base(["a/Foo-7B", "b/Foo-13B-v2", "Bar"]) == {"Foo": ["a/Foo-7B", "b/Foo-13B-v2"],
                                                                            "Bar": ["Bar"]}


def test_include_group_summaries() -> None:
    db = {}
    for name, nsfw, desc, tags, baseline in (("a/Foo-7B", False, "", ["x"], "llama"),
                                             ("a/Foo-13B-Q4_K_M", True, "d", ["y"], "llama")):
        short = name.split("/")[1]
        for key in (name, "aphrodite/" + name, "koboldcpp/" + short):
            db[key] = {"name": key, "nsfw": nsfw, "description": desc, "tags": tags, "baseline": baseline}
    out = include_group(db)
    assert list(out) == list(db)
    assert {e["text_model_group"] for e in out.values()} == {"Foo"}
    summary = out["koboldcpp/Foo-7B"]["text_model_group_summary"]
    assert summary == out["a/Foo-7B"]["text_model_group_summary"]
    assert summary["member_count"] == 6  # the backend copies are members, as in the old API
    assert summary["available_sizes"] == ["7B", "13B"] and summary["available_quants"] == ["Q4_K_M"]
    assert summary["common_baseline"] == "llama" and summary["any_nsfw"] and summary["any_has_description"]
    assert summary["merged_tags"] == ["x", "y"]
    # the author is what precedes the first "/", the backend for a backend copy (tests/api compares
    # every corpus entry with the existing library)
    assert summary["name_format"] == {"separator": "-", "part_order": ["base", "size", "quant"],
                                      "author_included": True, "common_author": None,
                                      "template": "{author}/{base}-{size}-{quant}"}


def test_include_group_variant_file(site_dir: Path) -> None:
    raw = (site_dir / INCLUDE_GROUP_FILE).read_bytes()
    doc = json.loads(raw)
    assert raw.decode() == json.dumps(doc)  # re-dumped with json.dumps defaults, as the old API does
    plain = read(site_dir, f"{V1}/text_generation")
    assert list(doc) == list(plain) and len(doc) == 3 * 719
    ref = json.loads((REFERENCE_V2 / "text_generation.json").read_bytes())
    for name, entry in doc.items():
        assert {k: v for k, v in entry.items() if not k.startswith("text_model_group")} == plain[name]
        if name in ref:
            assert entry["text_model_group"] == ref[name]["text_model_group"]
        elif name.startswith("aphrodite/"):  # a backend copy belongs to its model's group
            assert entry["text_model_group"] == doc[name[len("aphrodite/"):]]["text_model_group"]
        assert entry["text_model_group_summary"]["member_count"] >= 1
    assert INCLUDE_GROUP_FILE[:-5] in load_manifest(site_dir)["files"]


def test_query_variant_rules() -> None:
    key = f"{V1}/text_generation"
    for q in ("include_group=true", "include_group=True", "include_group=1", "x=1&include_group=yes"):
        assert query_variant(key, q) == INCLUDE_GROUP_FILE, q
    for q in ("", "include_group=false", "include_group=0", "include_group", "other=true"):
        assert query_variant(key, q) is None, q
    assert query_variant(f"{V1}/db.json", "include_group=true") is None  # only the old API's own route


@pytest.fixture(scope="module")
def serve_http(served: tuple[object, int]) -> Iterator[Http]:
    client = Http(served[1])
    yield client
    client.close()


@pytest.mark.parametrize("server", ["hmr serve", "nginx"])
def test_include_group_query_is_served(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    if server == "nginx":
        http = Http(request.getfixturevalue("nginx").port)
    else:
        http = request.getfixturevalue("serve_http")
    variant = (site_dir / INCLUDE_GROUP_FILE).read_bytes()
    plain = (site_dir / f"{V1}/text_generation.json").read_bytes()
    path = f"/{V1}/text_generation"
    for query, body in (("?include_group=true", variant), ("?include_group=1", variant), ("", plain),
                        ("?include_group=false", plain)):
        r = http.request(path + query)
        assert (r.status, r.headers["content-type"]) == (200, "application/json"), query
        assert r.body == body, query
    # the aliases are the old API's generic route, which ignores the parameter
    assert http.request(f"/{V1}/db.json?include_group=true").body == plain
    assert http.request(f"/{V2}/clip?include_group=true").status == 200
    if server == "nginx":
        http.close()
