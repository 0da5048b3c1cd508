"""Group aliases: `data/text_generation/_aliases.yaml` (schema-validated) published as `aliases` and
`aliases/{canonical}`, and resolved where the existing library's (8.6.2) alias store resolves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import DataError
from builder.records import ALIASES_FILE
from builder.routes import text_api_file
from builder.site.build import build
from tests.api.conftest import Run862
from tests.site_support import Http

ALIASES = {"magnum": {"aliases": ["Marx", "MN-Starcannon"]}, "Marx-alike": {"aliases": ["Marx-alike"]},
           "Qwen": {"aliases": []}}

# 8.6.2's alias store over the same entries, and the routes that consult it (text_utils.py)
OLD_ALIASES = """
import pathlib
from horde_model_reference.analytics.text_model_parser import get_base_model_name, parse_text_model_name
from horde_model_reference.group_aliases import GroupAliasStore
from horde_model_reference.group_families import detect_families
path = pathlib.Path("aliases.json")
path.write_text(json.dumps(DATA["aliases"]))
store = GroupAliasStore(file_path=path)
names = sorted({store.resolve(get_base_model_name(k)) for k in DATA["records"]})
fams = detect_families(names)
n_in = sum(len(m) for m in fams.values())
summary = {}
for g in sorted({d["text_model_group"] for d in DATA["records"].values()}):
    resolved, own = store.resolve(g), []
    if resolved == g:
        e = store.get(g)
        own = e.aliases if e and e.aliases else []
    summary[g] = [resolved if resolved != g else None, own]
OUT = {
    "aliases": {"entries": [{"canonical": c, "aliases": e.aliases} for c, e in sorted(store.list_all().items())]},
    "one": {c: {"canonical": store.get(c).canonical, "aliases": store.get(c).aliases} for c in DATA["aliases"]},
    "suggested": {n: store.resolve(get_base_model_name(n)) for n in DATA["records"]},
    "families/detect": {"suggestions": [{"family_name": f, "members": m} for f, m in fams.items()],
                        "total_groups_analyzed": len(names), "groups_in_families": n_in,
                        "standalone_groups": len(names) - n_in},
    "summary": summary,
}
"""


@pytest.fixture(scope="module")
def aliased_site(corpus_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    base = tmp_path_factory.mktemp("aliased")
    shutil.copytree(corpus_data, base / "data")
    (base / "data" / "text_generation" / ALIASES_FILE).write_text(json.dumps(ALIASES))  # JSON is YAML
    build(base / "data", base / "site")
    return base / "site"


def _doc(site: Path, name: str) -> dict:
    return json.loads((site / text_api_file(name)).read_bytes())


def test_aliases_equal_the_existing_library(aliased_site: Path, run_862: Run862) -> None:
    records = json.loads((aliased_site / "api/model_references/v2/text_generation.json").read_bytes())
    theirs = run_862(OLD_ALIASES, {"aliases": ALIASES, "records": records})
    assert _doc(aliased_site, "aliases") == theirs["aliases"]
    for canonical, expected in theirs["one"].items():
        assert _doc(aliased_site, f"aliases/{canonical}") == expected
    assert _doc(aliased_site, "families/detect") == theirs["families/detect"]
    for name, group in theirs["suggested"].items():
        assert _doc(aliased_site, f"parse_name/{name}")["suggested_group"] == group, name
    assert "magnum" in set(theirs["suggested"].values()) - {"Marx"}
    summary = {e["group_name"]: [e["alias_canonical"], e["aliases"]] for e in _doc(aliased_site, "groups/summary")["groups"]}
    assert summary == theirs["summary"]
    assert summary["Marx"] == ["magnum", []] and summary["magnum"] == [None, ["Marx", "MN-Starcannon"]]
    total = _doc(aliased_site, "groups/summary")["groups_with_aliases"]
    assert total == sum(1 for a, own in summary.values() if a or own)


def test_aliases_are_served(aliased_site: Path, tmp_path: Path) -> None:
    import threading

    from builder.site.serve import make_server

    server = make_server(aliased_site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    http = Http(server.server_address[1])
    try:
        key = text_api_file("aliases")[: -len(".json")]
        for target in (f"/{key}", f"/{key}/magnum"):
            r = http.request(target)
            assert r.status == 200 and r.headers["access-control-allow-origin"] == "*", target
        assert http.request(f"/{key}/magnum").json() == {"canonical": "magnum", "aliases": ["Marx", "MN-Starcannon"]}
        assert http.request(f"/{key}/no-such-group").status == 404
    finally:
        http.close()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("content", "wanted"), [
    ('{"a": {"aliases": ["x"]}, "b": {"aliases": ["x"]}}', "held by"),
    ('{"a": {"aliases": "x"}}', "is not of type"),
    ('{"a": {"aliasses": ["x"]}}', "aliases"),
    ("a: [", "unreadable"),
])
def test_a_bad_aliases_file_fails_the_build(corpus_data: Path, tmp_path: Path, content: str, wanted: str) -> None:
    import shutil

    shutil.copytree(corpus_data, tmp_path / "data")
    (tmp_path / "data" / "text_generation" / ALIASES_FILE).write_text(content)
    with pytest.raises(DataError, match=wanted) as e:
        build(tmp_path / "data", tmp_path / "site")
    assert e.value.file.endswith(ALIASES_FILE)
    assert not (tmp_path / "site").exists()
