"""`v2/text_generation/{groups, distinct_baselines, groups/health, groups/summary}` with the existing
library's (8.6.2) semantics over the published text records, served with CORS."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.routes import text_api_file, v1_file, v2_file
from tests.api.conftest import Run862
from tests.site_support import Http

# 8.6.2's text_utils routes (service/v2/routers/text_utils.py) on a REPLICA (no alias, family or
# schema store), written out over its own parser: its service needs FastAPI, which the client lacks
OLD_TEXT_UTILS = """
from horde_model_reference.analytics.text_model_parser import (get_base_model_name, parameter_size_sort_key,
                                                               parse_text_model_name)
from horde_model_reference.group_families import detect_families
from horde_model_reference.text_backend_names import has_legacy_text_backend_prefix
models = {k: v for k, v in DATA.items() if isinstance(v, dict)}
groups = {}
for k, d in models.items():
    g = d.get("text_model_group")
    if isinstance(g, str) and g:
        groups.setdefault(g, []).append((k, d))

def health(g, members):
    out = []
    I = lambda t, m, s="warning": {"group_name": g, "issue_type": t, "message": m, "severity": s}
    if len(members) == 1:
        out.append(I("singleton_group", "Group currently contains one canonical model", "info"))
    bls, nsfw, nodesc, nobl = set(), set(), 0, 0
    for _, d in members:
        bl = d.get("baseline")
        if isinstance(bl, str) and bl:
            bls.add(bl)
        else:
            nobl += 1
        if isinstance(d.get("nsfw"), bool):
            nsfw.add(d["nsfw"])
        if not d.get("description"):
            nodesc += 1
    if len(bls) > 1:
        out.append(I("inconsistent_baseline", f"Members have different baselines: {', '.join(sorted(bls))}"))
    if len(nsfw) > 1:
        out.append(I("inconsistent_nsfw", "Members have different NSFW flags"))
    if nobl:
        out.append(I("missing_baseline", f"{nobl} member(s) missing baseline"))
    if nodesc:
        out.append(I("missing_description", f"{nodesc} member(s) missing description", "info"))
    return out

issues, with_issues, counts, entries, total = [], 0, {}, [], 0
for g in sorted(groups):
    canon = [(k, d) for k, d in groups[g] if not has_legacy_text_backend_prefix(k)]
    found = health(g, canon)
    issues += found
    with_issues += bool(found)
    for i in found:
        counts[i["issue_type"]] = counts.get(i["issue_type"], 0) + 1
    total += len(groups[g])
    sizes = {parse_text_model_name(k).size for k, _ in canon} - {None}
    entries.append({"group_name": g, "canonical_count": len(canon), "backend_duplicate_count": len(groups[g]) - len(canon),
                    "has_custom_schema": False, "family_name": None, "alias_canonical": None, "aliases": [],
                    "available_sizes": sorted(sizes, key=parameter_size_sort_key), "health_issues": found})
names = sorted({get_base_model_name(k) for k in models})
fams = detect_families(names, min_prefix_length=3, min_family_size=2)
n_in = sum(len(m) for m in fams.values())
OUT = {
    "families/detect": {"suggestions": [{"family_name": f, "members": m} for f, m in fams.items()],
                        "total_groups_analyzed": len(names), "groups_in_families": n_in,
                        "standalone_groups": len(names) - n_in},
    "groups": {"groups": sorted(groups)},
    "distinct_baselines": {"baselines": sorted({d["baseline"].strip() for d in models.values()
                                                if isinstance(d.get("baseline"), str) and d["baseline"].strip()})},
    "groups/health": {"issues": issues, "total_groups_checked": len(groups), "groups_with_issues": with_issues,
                      "issue_counts_by_type": counts},
    "groups/summary": {"groups": entries, "total_groups": len(entries), "total_models": total,
                       "groups_with_families": 0, "groups_with_aliases": 0, "groups_with_issues": with_issues},
}
"""


def test_text_utilities_equal_the_existing_library(site_dir: Path, run_862: Run862) -> None:
    records = json.loads((site_dir / v2_file("text_generation")).read_bytes())
    theirs = run_862(OLD_TEXT_UTILS, records)
    for name, expected in theirs.items():
        assert json.loads((site_dir / text_api_file(name)).read_bytes()) == expected, name
    # the corpus reaches the rules: several groups, issues of more than one kind, multi-size groups
    assert len(theirs["groups"]["groups"]) > 100
    assert len(theirs["groups/health"]["issue_counts_by_type"]) > 2
    assert any(len(e["available_sizes"]) > 1 for e in theirs["groups/summary"]["groups"])
    assert len(theirs["families/detect"]["suggestions"]) > 3
    assert json.loads((site_dir / text_api_file("families")).read_bytes()) == {"families": []}


def test_family_detection_of_chosen_names(run_862: Run862) -> None:
    from builder.site.textapi import detect_families

    names = sorted(["Llama-3", "Llama-3-Instruct", "Llama-3-Chat-X", "Llama-2", "Llama-2-Chat", "Mi", "Mi-A", "Mi-B",
                    "Qwen-A-B-C", "Qwen-A-B-D", "Qwen-A-E", "Qwen-F", "abc-x", "abd-x", "Solo", "Ab-Cd-Ef", "Ab-Cd-Eg"])
    script = ("from horde_model_reference.group_families import detect_families\n"
              "OUT = [detect_families(DATA, min_prefix_length=a, min_family_size=b) for a, b in "
              "((3, 2), (2, 2), (5, 3), (2, 3))]")
    theirs = run_862(script, names)
    assert [detect_families(names, a, b) for a, b in ((3, 2), (2, 2), (5, 3), (2, 3))] == theirs


@pytest.mark.parametrize("server", ["served", "nginx"])
def test_text_utilities_are_served(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(server)
    http = Http(fixture[1] if server == "served" else fixture.port)
    try:
        for name in ("groups", "distinct_baselines", "groups/health", "groups/summary", "families",
                     "families/detect"):
            key = text_api_file(name)[: -len(".json")]
            r = http.request("/" + key)
            assert r.status == 200 and r.headers["content-type"].startswith("application/json"), name
            assert r.headers["access-control-allow-origin"] == "*"
            assert r.body == (site_dir / text_api_file(name)).read_bytes()
    finally:
        http.close()


OLD_PARSE_NAME = """
from horde_model_reference.analytics.text_model_parser import get_base_model_name, parse_text_model_name
OUT = {}
for n in DATA:
    p = parse_text_model_name(n)
    OUT[n] = {"original_name": n, "base_name": p.base_name, "size": p.size, "variant": p.variant, "quant": p.quant,
              "version": p.version, "suggested_group": get_base_model_name(n),
              "extras": [{"value": e.value, "position": e.position, "inferred_type": e.inferred_type.value}
                         for e in p.extras]}
"""


def test_parse_name_of_every_published_name(site_dir: Path, run_862: Run862) -> None:
    names = list(dict.fromkeys([*json.loads((site_dir / v2_file("text_generation")).read_bytes()),
                                *json.loads((site_dir / v1_file("text_generation")).read_bytes())]))
    theirs = run_862(OLD_PARSE_NAME, names)
    for n in names:
        doc = json.loads((site_dir / text_api_file(f"parse_name/{n}")).read_bytes())
        assert doc == theirs[n] and list(doc) == list(theirs[n]), n
    assert any(d["extras"] for d in theirs.values())


@pytest.mark.parametrize("server", ["served", "nginx"])
def test_parse_name_query_is_served(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(server)
    http = Http(fixture[1] if server == "served" else fixture.port)
    key = text_api_file("parse_name")[: -len(".json")]
    try:
        for name in ("acrastt/Marx-3B-V3", "koboldcpp/Marx-3B-V3"):
            body = (site_dir / text_api_file(f"parse_name/{name}")).read_bytes()
            targets = [f"/{key}?name={name}", f"/{key}/{name}"]
            if server == "served":  # nginx hands the raw query value on: documented in the config
                targets.append(f"/{key}?name={quote(name, safe='')}&x=1")
            for target in targets:
                r = http.request(target)
                assert r.status == 200 and r.body == body, target
                assert r.headers["access-control-allow-origin"] == "*"
                assert r.headers["content-type"].startswith("application/json")
        # a JSON file beside the site must not be reachable through the name
        outside = site_dir.parent / "outside-parse-name.json"
        outside.write_text("{}")
        try:
            climb = "../" * (key.count("/") + 2)
            for target in (f"/{key}", f"/{key}?name=", f"/{key}?name=no-such-model-7B", f"/{key}?name=../../clip",
                           f"/{key}?name={climb}outside-parse-name", f"/{key}?name={climb[:-1]}.%2Foutside-parse-name",
                           f"/{key}?name=%2E%2E/%2E%2E/clip"):
                r = http.request(target)
                assert r.status == 404 and r.json() == {"detail": "Not Found"}, target
                assert r.headers["access-control-allow-origin"] == "*"
        finally:
            outside.unlink()
    finally:
        http.close()
