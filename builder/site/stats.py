"""The statistics/{category} endpoints: the old API's category statistics, precomputed.

The figures are those of the existing library's `calculate_category_statistics` (8.6.2) over the
published v2 records, in its response shape (`CategoryStatistics`), serialised as the old API's
FastAPI answer is (compact, UTF-8). `computed_at` is the time of the category's newest data (its
`metadata/{category}/last_updated`; the build's time when unknown): an unchanged source builds the
same bytes, and a change to one category does not rewrite (and redeploy) the others' statistics. The old route's
`group_text_models=true` variant (text models merged by base name: the first member's record, named
after the group, with every member's downloads) is its own object, `statistics/text_generation.grouped`,
which the route table maps the query onto; for the other categories the parameter changes nothing.
The `with-stats`, `deletion-risk` and `popular` routes need live worker data and are not published.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeGuard
from urllib.parse import urlparse

from builder.routes import statistics_file

__all__ = ["PARAMETER_BUCKETS", "TOP_LIMIT", "category_statistics", "group_text_records", "statistics_files"]

Records = Mapping[str, Mapping[str, Any]]

#: how many tags and styles the old API lists
TOP_LIMIT = 20
_B = 1_000_000_000
#: the old API's parameter-count buckets: (lowest, first count above the bucket or None, label)
PARAMETER_BUCKETS: tuple[tuple[int, int | None, str], ...] = (
    (0, 3 * _B, "< 3B"), (3 * _B, 6 * _B, "3B-6B"), (6 * _B, 9 * _B, "6B-9B"), (9 * _B, 13 * _B, "9B-13B"),
    (13 * _B, 20 * _B, "13B-20B"), (20 * _B, 35 * _B, "20B-35B"), (35 * _B, 70 * _B, "35B-70B"),
    (70 * _B, None, "> 70B"),
)


def _number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and bool(v) and v > 0


def _share(count: int, total: int) -> float:
    return round(count / total * 100.0, 2)


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    # most frequent first; ties keep the order of first appearance, as the old API's stable sort does
    return sorted(counts.items(), key=lambda kv: -kv[1])


def category_statistics(records: Records, category: str, computed_at: int) -> dict[str, Any]:
    """The `CategoryStatistics` document of one category's records (model key -> v2 record)."""
    total = len(records)
    nsfw = with_downloads = download_entries = size_total = with_size = 0
    triggers = inpainting = requirements = showcases = without_params = 0
    baselines: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    styles: Counter[str] = Counter()
    params: list[int] = []
    for rec in records.values():
        if not isinstance(rec, Mapping):
            continue
        nsfw += bool(rec.get("nsfw"))
        if rec.get("baseline"):
            baselines[str(rec["baseline"])] += 1
        config = rec.get("config", {})
        downloads = config.get("download", []) if isinstance(config, Mapping) else []
        if isinstance(downloads, list) and downloads:
            with_downloads += 1
            download_entries += len(downloads)
            for d in downloads:
                url = d.get("file_url", "") if isinstance(d, Mapping) else ""
                host = urlparse(url).netloc if url else ""
                if host:
                    hosts[host] += 1
        size = rec.get("size_on_disk_bytes")
        if _number(size):
            with_size += 1
            size_total += int(size)
        if isinstance(rec.get("tags"), list):
            tags.update(str(t) for t in rec["tags"] if t)
        if rec.get("style"):
            styles[str(rec["style"])] += 1
        if category == "text_generation":
            count = rec.get("parameters_count")  # the old API's field name (v2 records say `parameters`)
            if _number(count):
                params.append(int(count))
            else:
                without_params += 1
        if category == "image_generation":
            triggers += isinstance(rec.get("trigger"), list) and bool(rec["trigger"])
            inpainting += bool(rec.get("inpainting"))
            req = rec.get("requirements")
            requirements += isinstance(req, Mapping) and bool(req)
        showcases += isinstance(rec.get("showcases"), list) and bool(rec["showcases"])

    buckets: Counter[str] = Counter()
    for p in params:
        for low, high, label in PARAMETER_BUCKETS:
            if p >= low and (high is None or p < high):
                buckets[label] += 1
                break
    return {
        "category": category,
        "total_models": total,
        "returned_models": total,
        "offset": 0,
        "limit": None,
        "nsfw_count": nsfw,
        "baseline_distribution": {b: {"baseline": b, "count": n, "percentage": _share(n, total)}
                                  for b, n in _ranked(baselines)} if total else {},
        "download_stats": {
            "total_models_with_downloads": with_downloads,
            "total_download_entries": download_entries,
            "total_size_bytes": size_total,
            "models_with_size_info": with_size,
            "average_size_bytes": round(size_total / with_size, 2) if with_size else 0.0,
            "hosts": dict(_ranked(hosts)),
        },
        "top_tags": [{"tag": t, "count": n, "percentage": _share(n, total)}
                     for t, n in _ranked(tags)[:TOP_LIMIT]] if total else [],
        "top_styles": [{"tag": s, "count": n, "percentage": _share(n, total)}
                       for s, n in _ranked(styles)[:TOP_LIMIT]] if total else [],
        "parameter_buckets": [{"bucket_label": label, "min_params": low, "max_params": high, "count": buckets[label],
                               "percentage": _share(buckets[label], total)}
                              for low, high, label in PARAMETER_BUCKETS if buckets[label]],
        "models_without_param_info": without_params,
        "models_with_trigger_words": int(triggers),
        "models_with_inpainting": inpainting,
        "models_with_requirements": int(requirements),
        "models_with_showcases": int(showcases),
        "computed_at": computed_at,
    }


def group_text_records(records: Records) -> dict[str, dict[str, Any]]:
    """Text records merged by base name, as the old `group_text_models=true` does: each group is its
    first member's record, named after the group, with the later members' downloads appended."""
    from builder.legacy.textgroups import base_name

    groups: dict[str, dict[str, Any]] = {}
    for key, rec in records.items():
        group = base_name(key)
        first = groups.get(group)
        if first is None:
            groups[group] = {**rec, "name": group}
            continue
        config = rec.get("config")
        if isinstance(config, Mapping) and "download" in config:
            merged = dict(first.get("config") or {})
            merged["download"] = [*merged.get("download", []), *config.get("download", [])]
            first["config"] = merged
    return groups


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def statistics_files(v2: Mapping[str, Records], times: Mapping[str, int | None],
                     build_time: float | None = None) -> dict[str, bytes]:
    """`statistics/{category}.json` for every category of `v2`, and the grouped text variant;
    `times`: category -> `computed_at` (None, or absent: `build_time`, None meaning now)."""
    fallback = int(build_time if build_time is not None else time.time())

    def when(cat: str) -> int:
        t = times.get(cat)
        return int(t) if t is not None else fallback

    out = {statistics_file(cat): _json(category_statistics(recs, cat, when(cat))) for cat, recs in v2.items()}
    if "text_generation" in v2:
        grouped = category_statistics(group_text_records(v2["text_generation"]), "text_generation",
                                      when("text_generation"))
        out[statistics_file("text_generation", grouped=True)] = _json(grouped)
    return out
