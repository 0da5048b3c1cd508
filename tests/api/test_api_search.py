"""`v2/search` and `v2/{category}/search` without parameters: the old API's default page, equal to what
8.6.2's search answers (its query over the same records, its record dumps), served with CORS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.routes import SEARCH_FILE, search_file, v2_file
from builder.site.search import DEFAULT_LIMIT, search_record
from tests.api.conftest import Run862
from tests.site_support import CLIENT_CATEGORIES, Http

# 8.6.2's search routes (service/v2/routers/search.py) without parameters, over a REPLICA of the served
# site: its query builder and its record dump (`_serialize_record`, written out: the route module needs
# FastAPI); every record's dump comes back too, so each one is compared, not only the first page
OLD_SEARCH = """
import os
os.environ.update({"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": DATA["api"], "HORDE_MODEL_REFERENCE_REPLICATE_MODE": "REPLICA",
                   "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false", "AI_HORDE_TESTING": "1"})
from horde_model_reference import MODEL_REFERENCE_CATEGORY as C, ModelReferenceManager
from horde_model_reference.licensing import unknown_model_licensing

def dump(r):
    p = r.model_dump(mode="json", exclude_none=True)
    p.setdefault("licensing", unknown_model_licensing().model_dump(mode="json", exclude_none=True))
    return p

def page(q, limit=50):
    total = q.count()
    return {"results": [dump(r) for r in q.offset(0).limit(limit).to_list()], "total": total, "offset": 0,
            "limit": limit, "has_more": limit < total}

m = ModelReferenceManager()
OUT = {"search": page(m.query_all()), "categories": {}, "records": {}}
for c in DATA["categories"]:
    OUT["categories"][c] = page(m.query(C(c)))
    OUT["records"][c] = [dump(r) for r in m.query(C(c)).to_list()]
"""


@pytest.fixture(scope="module")
def old_search(served: tuple[object, int], run_862: Run862, site_dir: Path) -> dict:
    cats = json.loads((site_dir / "api/model_references/v2/model_categories.json").read_bytes())
    return run_862(OLD_SEARCH, {"api": f"http://127.0.0.1:{served[1]}/api", "categories": cats})


def test_default_pages_equal_the_existing_library(site_dir: Path, old_search: dict) -> None:
    ours = json.loads((site_dir / SEARCH_FILE).read_bytes())
    assert ours == old_search["search"]
    assert ours["limit"] == DEFAULT_LIMIT and ours["has_more"] and ours["total"] > 900
    for c, expected in old_search["categories"].items():
        doc = json.loads((site_dir / search_file(c)).read_bytes())
        assert doc == expected, c
        assert [list(r) for r in doc["results"]] == [list(r) for r in expected["results"]], c
    # every record, not only the first pages: same fields, same order, same values
    for c, dumps in old_search["records"].items():
        records = json.loads((site_dir / v2_file(c)).read_bytes())
        ours_all = [search_record(c, r) for r in records.values()]
        assert ours_all == dumps and [list(r) for r in ours_all] == [list(r) for r in dumps], c
    assert not (site_dir / search_file("lora")).exists()  # managed elsewhere: the old search has none
    assert set(old_search["categories"]) < set(CLIENT_CATEGORIES)


@pytest.mark.parametrize("server", ["served", "nginx"])
def test_default_pages_are_served(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(server)
    http = Http(fixture[1] if server == "served" else fixture.port)
    try:
        for file in (SEARCH_FILE, search_file("image_generation"), search_file("text_generation"),
                     search_file("video_generation")):
            key = "/" + file[: -len(".json")]
            r = http.request(key, headers={"Origin": "https://example.org"})
            assert r.status == 200 and r.body == (site_dir / file).read_bytes(), key
            assert r.headers["content-type"].startswith("application/json")
            assert r.headers["access-control-allow-origin"] == "*"
    finally:
        http.close()
