"""The include_group summaries and the name rules equal the existing library's (8.6.2) for every
entry of the corpus and for names chosen to reach every rule."""

from __future__ import annotations

import json
from pathlib import Path

from builder.legacy.textgroups import base_name, include_group, parse_name
from builder.routes import INCLUDE_GROUP_FILE, v1_file
from tests.api.conftest import Run862

# the old API's include_group route, as 8.6.2 runs it (service/v1/routers/references.py)
OLD_INCLUDE_GROUP = """
from horde_model_reference.analytics.text_model_parser import compute_group_summaries, get_base_model_name
for name, entry in DATA.items():
    entry["text_model_group"] = get_base_model_name(name)
summaries = compute_group_summaries(DATA)
for name, entry in DATA.items():
    s = summaries[entry["text_model_group"]]
    f = s.name_format
    entry["text_model_group_summary"] = {
        "member_count": s.member_count, "available_sizes": s.available_sizes,
        "available_quants": s.available_quants, "common_baseline": s.common_baseline, "any_nsfw": s.any_nsfw,
        "any_has_description": s.any_has_description, "merged_tags": s.merged_tags,
        "name_format": {"separator": f.separator, "part_order": f.part_order, "author_included": f.author_included,
                        "common_author": f.common_author, "template": f.template}}
OUT = DATA
"""

OLD_PARSE = """
from horde_model_reference.analytics.text_model_parser import get_base_model_name, parse_text_model_name
OUT = {}
for n in DATA:
    p = parse_text_model_name(n)
    OUT[n] = {"base": get_base_model_name(n), "parse": [p.base_name, p.size, p.variant, p.quant, p.version,
              [[e.value, e.position, e.inferred_type.value] for e in p.extras]]}
"""

NAMES = [
    "acrastt/Marx-3B-V3", "anthracite-org/magnum-12b-v2", "aetherwiing/MN-12B-Starcannon-v3",
    "koboldcpp/Marx-3B-V3", "aphrodite/acrastt/Marx-3B-V3", "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "lizpreciatior/lzlv_70b_fp16_hf", "SicariusSicariiStuff/Impish_QWEN_14B-1M", "Org/3.1-Thing-7B-GGUF-Chat-2024",
    "7B", "4.2.0-Broken-Tutu-24B", "c4ai-command-r-08-2024", "Foo-2024-03-Q5_K_S", "Bar_v1.2.3_q8_0",
    "Baz-V0.420-Thinking", "x/Eclipse_12B_Q4_K_M-0414", "Qwen2.5-1.5B-Instruct-AWQ", "Model.v2.7B1",
    "Llama-3-8B-Instruct-Q4", "turbo-latest", "a b  c--7b", "--", "ÄÖ-7B-ſ", "Q3-Q4-Q5", "Mega-1.5x7B-v2.",
]


def test_include_group_equals_the_existing_library(site_dir: Path, run_862: Run862) -> None:
    db = json.loads((site_dir / v1_file("text_generation")).read_bytes())
    theirs = run_862(OLD_INCLUDE_GROUP, db)
    ours = json.loads((site_dir / INCLUDE_GROUP_FILE).read_bytes())
    assert list(ours) == list(theirs) == list(db)
    differ = [n for n in db if ours[n] != theirs[n]]
    assert not differ, (len(differ), differ[:3], [ours[n] for n in differ[:1]], [theirs[n] for n in differ[:1]])
    # the summaries are not trivial on the corpus: groups of several members, sizes, quants, dates
    summaries = [e["text_model_group_summary"] for e in ours.values()]
    assert max(s["member_count"] for s in summaries) > 3
    assert any(s["available_quants"] for s in summaries) and any(len(s["available_sizes"]) > 1 for s in summaries)


def test_include_group_of_chosen_names(run_862: Run862) -> None:
    db = {n: {"name": n, "baseline": b, "nsfw": i % 3 == 0, "description": "d" * (i % 2), "tags": [f"t{i % 4}"]}
          for i, (n, b) in enumerate((n, ("llama", "mistral", "")[i % 3]) for i, n in enumerate(NAMES))}
    assert include_group(db) == run_862(OLD_INCLUDE_GROUP, db)


def test_name_rules_equal_the_existing_library(site_dir: Path, run_862: Run862) -> None:
    names = [*NAMES, *json.loads((site_dir / v1_file("text_generation")).read_bytes())]
    theirs = run_862(OLD_PARSE, names)
    for n in names:
        p = parse_name(n)
        ours = {"base": base_name(n), "parse": [p.base, p.size, p.variant, p.quant, p.version,
                                                 [[e.value, e.position, e.kind] for e in p.extras]]}
        assert ours == theirs[n], n
