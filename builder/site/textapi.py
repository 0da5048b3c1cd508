"""The old API's text-model utilities (`v2/text_generation/...`), precomputed from the published records.

With the existing library's (8.6.2) semantics, over the v2 text records (their `text_model_group`):

- `groups`: `{"groups": [...]}`, the distinct groups, sorted;
- `distinct_baselines`: `{"baselines": [...]}`, the distinct non-blank baselines (trimmed), sorted;
- `groups/health`: every group's issues (a single member, members with different baselines or
  nsfw flags, members without baseline or description), with the counts per issue type;
- `groups/summary`: per group the member counts, sizes and issues, with the totals;
- `families/detect` (default parameters): families suggested from the groups' shared `-` prefixes
  (the longest prefix holding at least two unclaimed groups of at least three characters wins);
- `families`: the stored families, none on a static site (`{"families": []}`);
- `group/by-name/{group}` for every group: what `group?name=G` answers (the route table maps the query
  onto it): the members with their parsed names, the fields they share, the sizes, variants, quants
  and versions with their counts, the inferred name format, the health figures (no guidance, name
  schema or family store: every canonical member's guidance is its legacy label or none);
- `parse_name/{name}` for every published name (the v2 keys and the db.json names): what
  `parse_name?name=...` answers (the route table maps the query onto it); `suggested_group` is the
  name's group.

- `aliases` and `aliases/{canonical}`: the group aliases of `data/text_generation/_aliases.yaml`
  (canonical group -> `{aliases: [base names]}`, the old alias store's file shape, schema-validated).
  As in the old API, an alias resolves to its canonical group in `parse_name`'s `suggested_group`,
  in `families/detect` and in the summary's `alias_canonical` / `aliases`.

There is no family or name-schema store, so the summary's `has_custom_schema` and `family_name` are
the defaults. The documents are serialised as the old FastAPI answers are (compact, UTF-8).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from builder.errors import DataError
from builder.legacy.textgroups import (
    BACKEND_PREFIXES,
    base_name,
    name_format,
    parse_name,
    size_sort_key,
    strip_backend,
)
from builder.routes import GROUP_BY_NAME, text_api_file

__all__ = ["Aliases", "detect_families", "group_answer", "group_health_issues", "groups_by_name", "load_aliases",
           "parse_name_answer", "text_api_files"]

Records = Mapping[str, Mapping[str, Any]]
Members = list[tuple[str, Mapping[str, Any]]]
#: canonical group -> its aliases
Aliases = Mapping[str, list[str]]


def load_aliases(path: Path) -> dict[str, list[str]]:
    """The group aliases of the file `path` (none when it does not exist).

    Raises:
        DataError: the file is unreadable, breaks its schema, or gives one alias to two groups.
    """
    if not path.exists():
        return {}
    from jsonschema import Draft202012Validator

    from builder.records import parse_file
    from builder.schemas import group_aliases_schema

    try:
        data = parse_file(path, path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"unreadable: {e}", str(path)) from e
    data = {} if data is None else data
    for error in Draft202012Validator(group_aliases_schema()).iter_errors(data):
        raise DataError(error.message, str(path), "".join(f"/{p}" for p in error.absolute_path))
    held: dict[str, str] = {}
    for canonical, entry in data.items():
        for alias in entry["aliases"]:
            if alias in held and held[alias] != canonical:
                raise DataError(f"alias {alias!r} is held by {held[alias]!r} too", str(path), f"/{canonical}/aliases")
            held[alias] = canonical
    return {canonical: list(entry["aliases"]) for canonical, entry in data.items()}


def _resolver(aliases: Aliases) -> dict[str, str]:
    return {a: canonical for canonical, names in aliases.items() for a in names}


def groups_by_name(records: Records) -> dict[str, Members]:
    """Group -> its (key, record) members, for the records whose `text_model_group` is a non-empty string."""
    out: dict[str, Members] = {}
    for key, rec in records.items():
        group = rec.get("text_model_group")
        if isinstance(group, str) and group:
            out.setdefault(group, []).append((key, rec))
    return out


def _issue(group: str, kind: str, message: str, severity: str = "warning") -> dict[str, Any]:
    return {"group_name": group, "issue_type": kind, "message": message, "severity": severity}


def group_health_issues(group: str, members: Members) -> list[dict[str, Any]]:
    """The health issues of one group's canonical members, in the old API's order and wording."""
    issues = []
    if len(members) == 1:
        issues.append(_issue(group, "singleton_group", "Group currently contains one canonical model", "info"))
    baselines = {r["baseline"] for _, r in members if isinstance(r.get("baseline"), str) and r["baseline"]}
    no_baseline = sum(1 for _, r in members if not (isinstance(r.get("baseline"), str) and r["baseline"]))
    nsfw = {r["nsfw"] for _, r in members if isinstance(r.get("nsfw"), bool)}
    no_description = sum(1 for _, r in members if not r.get("description"))
    if len(baselines) > 1:
        issues.append(_issue(group, "inconsistent_baseline",
                             f"Members have different baselines: {', '.join(sorted(baselines))}"))
    if len(nsfw) > 1:
        issues.append(_issue(group, "inconsistent_nsfw", "Members have different NSFW flags"))
    if no_baseline:
        issues.append(_issue(group, "missing_baseline", f"{no_baseline} member(s) missing baseline"))
    if no_description:
        issues.append(_issue(group, "missing_description", f"{no_description} member(s) missing description", "info"))
    return issues


def _canonical(members: Members) -> Members:
    return [(k, r) for k, r in members if not k.startswith(BACKEND_PREFIXES)]


def _health(groups: Mapping[str, Members]) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    with_issues = 0
    counts: dict[str, int] = {}
    for group in sorted(groups):
        found = group_health_issues(group, _canonical(groups[group]))
        with_issues += bool(found)
        issues += found
        for i in found:
            counts[i["issue_type"]] = counts.get(i["issue_type"], 0) + 1
    return {"issues": issues, "total_groups_checked": len(groups), "groups_with_issues": with_issues,
            "issue_counts_by_type": counts}


def _summary(groups: Mapping[str, Members], aliases: Aliases) -> dict[str, Any]:
    resolve = _resolver(aliases)
    entries = []
    total = with_issues = with_aliases = 0
    for group in sorted(groups):
        members = groups[group]
        canonical = _canonical(members)
        total += len(members)
        sizes = {s for s in (parse_name(strip_backend(k)).size for k, _ in canonical) if s}
        issues = group_health_issues(group, canonical)
        with_issues += bool(issues)
        target = resolve.get(group)
        target = None if target == group else target
        own = aliases.get(group, []) if target is None else []
        with_aliases += bool(target is not None or own)
        entries.append({
            "group_name": group, "canonical_count": len(canonical), "backend_duplicate_count": len(members) -
            len(canonical), "has_custom_schema": False, "family_name": None, "alias_canonical": target,
            "aliases": list(own),
            "available_sizes": sorted(sizes, key=size_sort_key), "health_issues": issues,
        })
    return {"groups": entries, "total_groups": len(entries), "total_models": total, "groups_with_families": 0,
            "groups_with_aliases": with_aliases, "groups_with_issues": with_issues}


def detect_families(groups: list[str], min_prefix: int = 3, min_size: int = 2) -> dict[str, list[str]]:
    """Suggested families of the sorted group names `groups`: prefix -> its member groups, by prefix."""
    holders: dict[str, set[str]] = {}
    for g in groups:
        parts = g.split("-")
        for depth in range(len(parts) - 1, 0, -1):  # every proper "-" prefix, longest first
            prefix = "-".join(parts[:depth])
            if len(prefix) >= min_prefix:
                holders.setdefault(prefix, set()).add(g)
    claimed: set[str] = set()
    found: dict[str, list[str]] = {}
    # longest first; prefixes of one length in the order they were first seen (a stable sort)
    for prefix in sorted(holders, key=lambda p: -len(p)):
        free = sorted(holders[prefix] - claimed)
        if len(free) >= min_size:
            found[prefix] = free
            claimed.update(free)
    return dict(sorted(found.items()))


def _families_detect(records: Records, aliases: Aliases) -> dict[str, Any]:
    resolve = _resolver(aliases)
    names = sorted({resolve.get(b, b) for b in (base_name(k) for k in records)})
    families = detect_families(names)
    members = sum(len(m) for m in families.values())
    return {"suggestions": [{"family_name": f, "members": m} for f, m in families.items()],
            "total_groups_analyzed": len(names), "groups_in_families": members,
            "standalone_groups": len(names) - members}


#: the record fields the old API reports as shared when every canonical member has the same (non-null) value
COMMON_FIELDS = ("baseline", "description", "url", "nsfw", "tags", "style", "instruct_format")
#: the guidance states the old API counts (its catalog ships empty, so none is "published" here)
GUIDANCE_STATES = ("published", "legacy_label", "undocumented")


def _common_fields(canonical: Members) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in COMMON_FIELDS:
        values = [r.get(f) for _, r in canonical]
        if values and values[0] is not None and all(v == values[0] for v in values):
            out[f] = values[0]
    return out


def _name_format(names: list[str]) -> dict[str, Any]:
    # include_group's name format plus the labels of the extra segments, in first-seen order
    extras: list[str] = []
    for n in names:
        for e in parse_name(n.partition("/")[2] if "/" in n else n).extras:
            if e.kind not in extras:
                extras.append(e.kind)
    return {**name_format(names), "extra_parts": extras}


def _by_first(values: Iterable[str | None]) -> list[str | None]:
    return sorted(set(values), key=lambda v: v or "")


def group_answer(group: str, members: Members) -> dict[str, Any]:
    """The old API's `group?name=` answer for one group's (key, record) members, in the records' order."""
    entries: list[dict[str, Any]] = []
    canonical: Members = []
    parsed_canonical = []
    for key, rec in members:
        prefix = next((p[:-1] for p in BACKEND_PREFIXES if key.startswith(p)), None)
        target = strip_backend(key)
        target = target.split("/", 1)[1] if "/" in target else target
        p = parse_name(target)
        doc = p.as_dict()
        del doc["original_name"]
        instruct = rec.get("instruct_format")
        legacy = isinstance(instruct, str) and bool(instruct.strip())
        entries.append({
            "name": key, "parsed": doc, **{f: rec.get(f) for f in ("parameters", "baseline", "nsfw", "description",
                                                                   "url", "style", "tags", "display_name",
                                                                   "instruct_format")},
            "is_backend_duplicate": prefix is not None, "backend_prefix": prefix,
            "guidance": None if prefix is not None else {"status": "legacy_label" if legacy else "undocumented",
                                                         "primary_profile_id": None, "supplemental_profile_ids": []},
        })
        if prefix is None:
            canonical.append((key, rec))
            parsed_canonical.append(p)

    def usage(values: Iterable[str | None]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in values:
            if v:
                counts[v] = counts.get(v, 0) + 1
        return counts

    sizes = usage(p.size for p in parsed_canonical)
    guidance = [e["guidance"]["status"] for e in entries if e["guidance"] is not None]
    return {
        "group_name": group,
        "members": entries,
        "common_fields": _common_fields(canonical),
        "available_sizes": sorted(sizes, key=size_sort_key),
        "available_variants": _by_first(p.variant for p in parsed_canonical),
        "available_quants": _by_first(p.quant for p in parsed_canonical),
        "available_versions": _by_first(p.version for p in parsed_canonical),
        "size_usage": sizes,
        "variant_usage": usage(p.variant for p in parsed_canonical),
        "quant_usage": usage(p.quant for p in parsed_canonical),
        "name_format": _name_format([k for k, _ in canonical]),
        "canonical_count": len(canonical),
        "backend_duplicate_count": len(entries) - len(canonical),
        "name_schema_is_custom": False,
        "exception_members": [{"name": k, "reason": r["name_schema_exception"]} for k, r in canonical
                              if r.get("name_schema_exception")],
        "related_family": None,
        "guidance_coverage": {s: guidance.count(s) for s in GUIDANCE_STATES},
    }


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _parse_answer(name: str, resolve: Mapping[str, str]) -> dict[str, Any]:
    doc = parse_name(name).as_dict()
    extras = doc.pop("extras")
    group = base_name(name)
    return {**doc, "suggested_group": resolve.get(group, group), "extras": extras}


def parse_name_answer(name: str, aliases: Aliases | None = None) -> dict[str, Any]:
    """The old API's `parse_name?name=` answer for `name` (`suggested_group`: its group, alias-resolved)."""
    return _parse_answer(name, _resolver(aliases or {}))


def text_api_files(records: Records, names: Iterable[str] = (), aliases: Aliases | None = None) -> dict[str, bytes]:
    """The text utility documents (module docstring) of the published text records (key -> v2 record);
    `names`: the other published names (db.json's) that get a `parse_name` answer; `aliases`: the
    group aliases (`load_aliases`)."""
    aliases = aliases or {}
    resolve = _resolver(aliases)
    groups = groups_by_name(records)
    baselines = {r["baseline"].strip() for r in records.values() if isinstance(r.get("baseline"), str)}
    return {
        text_api_file("groups"): _json({"groups": sorted(groups)}),
        text_api_file("distinct_baselines"): _json({"baselines": sorted(b for b in baselines if b)}),
        text_api_file("groups/health"): _json(_health(groups)),
        text_api_file("groups/summary"): _json(_summary(groups, aliases)),
        text_api_file("families/detect"): _json(_families_detect(records, aliases)),
        text_api_file("aliases"): _json({"entries": [{"canonical": c, "aliases": aliases[c]} for c in sorted(aliases)]}),
        **{text_api_file(f"aliases/{c}"): _json({"canonical": c, "aliases": a}) for c, a in aliases.items()},
        text_api_file("families"): _json({"families": []}),
        **{f"{GROUP_BY_NAME}{g}.json": _json(group_answer(g, m)) for g, m in groups.items()},
        **{text_api_file(f"parse_name/{n}"): _json(_parse_answer(n, resolve)) for n in dict.fromkeys([*records, *names])},
    }
