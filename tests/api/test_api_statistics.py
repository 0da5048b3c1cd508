"""`model_references/statistics/{category}` (and `group_text_models=true`) equal the existing library's
(8.6.2) `calculate_category_statistics` over the same published records, and are served by `hmr serve`
and nginx with the query variant and CORS."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from builder.categories import CATEGORIES
from builder.routes import MANIFEST_FILE, STATISTICS, metadata_prefix, statistics_file, v2_file
from tests.api.conftest import Run862
from tests.site_support import Http

# 8.6.2's statistics route (service/statistics/routers/statistics.py), its grouping included
OLD_STATISTICS = """
import copy
from horde_model_reference.analytics.statistics import calculate_category_statistics
from horde_model_reference.analytics.text_model_parser import get_base_model_name
from horde_model_reference.meta_consts import MODEL_REFERENCE_CATEGORY as C

def grouped(raw):
    out = {}
    for name, data in raw.items():
        base = get_base_model_name(name)
        if base not in out:
            out[base] = data.copy()
            out[base]["name"] = base
        else:
            e = out[base]
            if "config" in data and "download" in data["config"]:
                e.setdefault("config", {})
                e["config"].setdefault("download", [])
                e["config"]["download"].extend(data["config"].get("download", []))
    return out

OUT = {}
for cat, raw in DATA.items():
    OUT[cat] = calculate_category_statistics(copy.deepcopy(raw), C(cat)).model_dump(mode="json")
    if cat == "text_generation":
        OUT[cat + ".grouped"] = calculate_category_statistics(grouped(copy.deepcopy(raw)), C(cat)).model_dump(
            mode="json")
"""


@pytest.fixture(scope="module")
def theirs(site_dir: Path, run_862: Run862) -> dict:
    data = {c.name: json.loads((site_dir / v2_file(c.name)).read_bytes()) for c in CATEGORIES}
    return run_862(OLD_STATISTICS, data)


def _ours(site_dir: Path, name: str) -> dict:
    cat, _, variant = name.partition(".")
    return json.loads((site_dir / statistics_file(cat, grouped=bool(variant))).read_bytes())


def test_statistics_equal_the_existing_library(site_dir: Path, theirs: dict) -> None:
    built_at = json.loads((site_dir / MANIFEST_FILE).read_bytes())["built_at"]
    build_time = int(datetime.fromisoformat(built_at.replace("Z", "+00:00")).timestamp())
    assert set(theirs) == {c.name for c in CATEGORIES} | {"text_generation.grouped"}
    for name, expected in theirs.items():
        ours = _ours(site_dir, name)
        # the time of the category's data (as its metadata says), else the build's: never the wall clock
        cat = name.partition(".")[0]
        last = json.loads((site_dir / f"{metadata_prefix('v2')}/{cat}/last_updated.json").read_bytes())["last_updated"]
        assert ours["computed_at"] == (last if last is not None else build_time), name
        assert {**ours, "computed_at": 0} == {**expected, "computed_at": 0}, name
        assert list(ours) == list(expected), name  # the response's field order
    # the corpus exercises the figures: baselines, hosts, tags, and grouping merges text models
    img = _ours(site_dir, "image_generation")
    assert img["baseline_distribution"] and img["download_stats"]["hosts"] and img["top_tags"]
    assert img["models_with_inpainting"] > 0 and img["top_styles"]
    assert _ours(site_dir, "text_generation.grouped")["total_models"] < _ours(site_dir, "text_generation")["total_models"]


@pytest.mark.parametrize("server", ["served", "nginx"])
def test_statistics_are_served(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(server)
    http = Http(fixture[1] if server == "served" else fixture.port)
    try:
        for c in CATEGORIES:
            r = http.request(f"/{STATISTICS}/{c.name}")
            assert r.status == 200 and r.headers["content-type"].startswith("application/json"), c.name
            assert r.headers["access-control-allow-origin"] == "*"
            assert r.body == (site_dir / statistics_file(c.name)).read_bytes()
        grouped = (site_dir / statistics_file("text_generation", grouped=True)).read_bytes()
        plain = (site_dir / statistics_file("text_generation")).read_bytes()
        for query, body in (("?group_text_models=true", grouped), ("?group_text_models=1", grouped),
                            ("?group_text_models=false", plain), ("", plain)):
            assert http.request(f"/{STATISTICS}/text_generation{query}").body == body, query
        assert http.request(f"/{STATISTICS}/text_generation.grouped").body == grouped  # the plain static key
        # the parameter changes nothing for the other categories, as in the old API
        assert http.request(f"/{STATISTICS}/clip?group_text_models=true").body == \
            (site_dir / statistics_file("clip")).read_bytes()
    finally:
        http.close()
