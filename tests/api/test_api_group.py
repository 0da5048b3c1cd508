"""`v2/text_generation/group?name=G` for every group, equal to the existing library's (8.6.2) answer over
the published text records, and served (query and plain key) by `hmr serve` and nginx with CORS."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.routes import GROUP_BY_NAME, text_api_file, v2_file
from tests.api.conftest import Run862
from tests.site_support import Http

# 8.6.2's get_group (service/v2/routers/text_utils.py) on a REPLICA (no name-schema or family store, the
# packaged guidance catalog), written out over the library's own parser, guidance store and models:
# the route module needs FastAPI, which the client lacks
OLD_GROUP = """
from pathlib import Path
import horde_model_reference
from horde_model_reference.analytics.text_model_parser import (infer_name_format, parameter_size_sort_key,
                                                               parse_text_model_name)
from horde_model_reference.text_backend_names import has_legacy_text_backend_prefix
from horde_model_reference.text_guidance import TextGuidanceStatus
from horde_model_reference.text_guidance_store import TextGuidanceStore
store = TextGuidanceStore(root_path=Path("guidance"), writable=False,
                          bootstrap_path=Path(horde_model_reference.__file__).parent / "data" / "guidance")
models = {k: v for k, v in DATA.items() if isinstance(v, dict)}
names = sorted({d["text_model_group"] for d in models.values() if d.get("text_model_group")})
OUT = {}
for g in names:
    members, canon, sizes, variants, quants, versions, su, vu, qu = [], [], set(), set(), set(), set(), {}, {}, {}
    for key, d in ((k, d) for k, d in models.items() if d.get("text_model_group") == g):
        dup = has_legacy_text_backend_prefix(key)
        prefix = next((p.rstrip("/") for p in ("aphrodite/", "koboldcpp/") if dup and key.startswith(p)), None)
        target = key[len(prefix) + 1:] if prefix else key
        target = target.split("/", 1)[1] if "/" in target else target
        p = parse_text_model_name(target)
        inst = d.get("instruct_format")
        guid = None if dup else store.summary_for_model(key, legacy_instruct_format=inst if isinstance(inst, str)
                                                        else None).model_dump(mode="json")
        members.append({"name": key, "parsed": {"base_name": p.base_name, "size": p.size, "variant": p.variant,
                        "quant": p.quant, "version": p.version, "extras": [{"value": e.value, "position": e.position,
                        "inferred_type": e.inferred_type.value} for e in p.extras]},
                        **{f: d.get(f) for f in ("parameters", "baseline", "nsfw", "description", "url", "style",
                                                 "tags", "display_name", "instruct_format")},
                        "is_backend_duplicate": dup, "backend_prefix": prefix, "guidance": guid})
        if not dup:
            canon.append((key, d))
            if p.size:
                sizes.add(p.size)
                su[p.size] = su.get(p.size, 0) + 1
            variants.add(p.variant)
            if p.variant:
                vu[p.variant] = vu.get(p.variant, 0) + 1
            quants.add(p.quant)
            if p.quant:
                qu[p.quant] = qu.get(p.quant, 0) + 1
            versions.add(p.version)
    common = {}
    for f in ("baseline", "description", "url", "nsfw", "tags", "style", "instruct_format"):
        vals = [d.get(f) for _, d in canon]
        if vals and all(v == vals[0] for v in vals) and vals[0] is not None:
            common[f] = vals[0]
    s = infer_name_format([k for k, _ in canon])
    OUT[g] = {"group_name": g, "members": members, "common_fields": common,
              "available_sizes": sorted(sizes, key=parameter_size_sort_key),
              "available_variants": sorted(variants, key=lambda v: v or ""),
              "available_quants": sorted(quants, key=lambda v: v or ""),
              "available_versions": sorted(versions, key=lambda v: v or ""),
              "size_usage": su, "variant_usage": vu, "quant_usage": qu,
              "name_format": {"separator": s.separator, "part_order": s.part_order, "author_included": s.author_included,
                              "common_author": s.common_author, "template": s.template, "extra_parts": s.extra_parts},
              "canonical_count": len(canon), "backend_duplicate_count": len(members) - len(canon),
              "name_schema_is_custom": False,
              "exception_members": [{"name": k, "reason": d["name_schema_exception"]} for k, d in canon
                                    if d.get("name_schema_exception")],
              "related_family": None,
              "guidance_coverage": {st.value: sum(1 for m in members if not m["is_backend_duplicate"]
                                                  and m["guidance"] and m["guidance"]["status"] == st.value)
                                    for st in TextGuidanceStatus}}
"""


def _group_file(site_dir: Path, group: str) -> Path:
    return site_dir / f"{GROUP_BY_NAME}{group}.json"


def test_group_of_every_group_equals_the_existing_library(site_dir: Path, run_862: Run862) -> None:
    records = json.loads((site_dir / v2_file("text_generation")).read_bytes())
    theirs = run_862(OLD_GROUP, records)
    groups = json.loads((site_dir / text_api_file("groups")).read_bytes())["groups"]
    assert sorted(theirs) == groups and len(groups) > 100
    for g, expected in theirs.items():
        ours = json.loads(_group_file(site_dir, g).read_bytes())
        assert ours == expected and list(ours) == list(expected), g
    # the corpus reaches the rules: shared fields, several sizes, extra parts, guidance labels (the backend
    # copies are not v2 records: the chosen records below have them)
    docs = list(theirs.values())
    assert any(d["common_fields"] for d in docs)
    assert any(len(d["available_sizes"]) > 1 for d in docs) and any(d["name_format"]["extra_parts"] for d in docs)
    assert any(d["guidance_coverage"]["legacy_label"] for d in docs)
    # only groups are published: no file for a name outside them
    published = {p.relative_to(site_dir / GROUP_BY_NAME).as_posix()[: -len(".json")]
                 for p in (site_dir / GROUP_BY_NAME).rglob("*.json")}
    assert published == set(groups)


@pytest.mark.parametrize("server", ["served", "nginx"])
def test_group_query_is_served(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(server)
    http = Http(fixture[1] if server == "served" else fixture.port)
    key = "/" + text_api_file("group")[: -len(".json")]
    groups = json.loads((site_dir / text_api_file("groups")).read_bytes())["groups"]
    try:
        for g in (groups[0], groups[-1], "Marx"):
            body = _group_file(site_dir, g).read_bytes()
            targets = [f"{key}?name={quote(g)}", f"/{GROUP_BY_NAME}{quote(g)}", f"/{GROUP_BY_NAME}{quote(g)}.json"]
            for target in targets:
                for method in ("GET", "HEAD"):
                    r = http.request(target, method=method, headers={"Origin": "https://example.org"})
                    assert r.status == 200, (target, method)
                    assert r.headers["content-type"].startswith("application/json")
                    assert r.headers["access-control-allow-origin"] == "*"
                    assert r.body == (body if method == "GET" else b""), target
        for target in (key, f"{key}?name=", f"{key}?name=no-such-group", f"{key}?name=../../clip",
                       f"{key}?name=../parse_name/Marx-3B-V3", f"/{GROUP_BY_NAME}no-such-group"):
            r = http.request(target)
            assert r.status == 404 and r.json() == {"detail": "Not Found"}, target
            assert r.headers["access-control-allow-origin"] == "*"
    finally:
        http.close()


def test_group_of_chosen_records(run_862: Run862) -> None:
    from builder.legacy.textgroups import base_name
    from builder.site.textapi import group_answer, groups_by_name

    names = ["acrastt/Marx-3B-V3", "koboldcpp/Marx-3B-V3", "aphrodite/acrastt/Marx-3B-V3", "Marx-7B-Instruct-Q4_K_M",
             "other/Marx-3B-2024-03", "Solo-13B", "koboldcpp/Only-Copy-7B", "Org/3.1-Thing-7B-GGUF-Chat-2024"]
    records = {n: {"name": n, "text_model_group": base_name(n), "baseline": ("llama", "mistral")[i % 2 if i > 3 else 0],
                   "nsfw": i == 4, "tags": ["a"], "parameters": 3_000_000_000 + i, "description": "d" if i else None,
                   "instruct_format": ("", "ChatML", None)[i % 3], **({"name_schema_exception": "odd"} if i == 4 else {})}
               for i, n in enumerate(names)}
    theirs = run_862(OLD_GROUP, records)
    ours = {g: group_answer(g, m) for g, m in groups_by_name(records).items()}
    assert ours == theirs and all(list(ours[g]) == list(theirs[g]) for g in ours)
    assert theirs["Marx"]["backend_duplicate_count"] == 2 and theirs["Marx"]["exception_members"]
    assert theirs["Only-Copy"]["canonical_count"] == 0
