"""`hmr diff BASE NEW`: what changed, model by model and field by field, between two builds.

BASE and NEW are each a built site directory, a data directory, or a git ref, read as snapshots of
what they publish (`builder.contrib.snapshot`). The comparison reads what is published: the v2 category files (every field a client
sees), the v1 legacy files of the image-repo categories (fields only the legacy format carries,
reported as `v1.<field>`) and `renames.json` (a removed key whose rename target was added is a
rename, not a removal plus an addition).

Security-relevant changes are flagged: a download from a host the model did not use before (for a
new model: a host no model used before), a changed or dropped sha256, a flipped nsfw flag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from builder.categories import CATEGORIES
from builder.contrib.snapshot import (  # re-exported: diff is where check-urls and tests find them
    Snapshot,
    resolve,
    snapshot_from,
    snapshot_of_data,
    snapshot_of_ref,
    snapshot_of_site,
)

__all__ = [
    "Change", "CategoryDiff", "Diff", "ModelChange", "Snapshot", "compare", "diff", "field_changes", "render",
    "resolve", "security_flags", "snapshot_from", "snapshot_of_data", "snapshot_of_ref", "snapshot_of_site",
]

#: GitHub refuses comments over 65536 characters; stay well below
MARKDOWN_LIMIT = 60000
_ABSENT: Any = object()


# --- the comparison -------------------------------------------------------------------------------

@dataclass
class Change:
    """One changed leaf field (dotted path), its old and new value (absent on one side for an
    added or removed field), and whether it is security-relevant."""

    field: str
    old: Any = _ABSENT
    new: Any = _ABSENT
    security: bool = False

    def as_json(self) -> dict:
        """The change in `hmr diff --format json` (an absent side is left out)."""
        out: dict[str, Any] = {"field": self.field}
        if self.old is not _ABSENT:
            out["old"] = self.old
        if self.new is not _ABSENT:
            out["new"] = self.new
        out["security"] = self.security
        return out


@dataclass
class ModelChange:
    """One model's changes (and why a reviewer should look twice: `flags`)."""

    key: str
    changes: list[Change] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    #: for a rename: the former key
    old_key: str | None = None
    #: for an addition: a one-line description (baseline, nsfw, download hosts)
    summary: str = ""


@dataclass
class CategoryDiff:
    """The models of one category added, removed, renamed and changed (false when none)."""

    added: list[ModelChange] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[ModelChange] = field(default_factory=list)
    changed: list[ModelChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.changed)

    def models(self) -> list[ModelChange]:
        """Every model present in NEW that changed: added, renamed, changed."""
        return self.added + self.renamed + self.changed


@dataclass
class Diff:
    """The semantic diff of two builds: per category (only those that differ), what changed."""

    base: str
    new: str
    categories: dict[str, CategoryDiff]

    def counts(self) -> dict[str, int]:
        """Models added, removed, renamed, changed, and security flags, over all categories."""
        cds = self.categories.values()
        return {
            "added": sum(len(c.added) for c in cds),
            "removed": sum(len(c.removed) for c in cds),
            "renamed": sum(len(c.renamed) for c in cds),
            "changed": sum(len(c.changed) for c in cds),
            "security": sum(len(m.flags) for c in cds for m in c.models()),
        }

    def changed_keys(self) -> dict[str, list[str]]:
        """category -> keys (in NEW) of models added, renamed or changed."""
        return {cat: [m.key for m in cd.models()] for cat, cd in self.categories.items() if cd.models()}

    def as_json(self) -> dict:
        """The document `hmr diff --format json` prints."""
        cats = {}
        for name, cd in self.categories.items():
            cats[name] = {
                "added": [{"key": m.key, "summary": m.summary, "flags": m.flags} for m in cd.added],
                "removed": cd.removed,
                "renamed": [{"from": m.old_key, "to": m.key, "changes": [c.as_json() for c in m.changes],
                             "flags": m.flags} for m in cd.renamed],
                "changed": [{"key": m.key, "changes": [c.as_json() for c in m.changes], "flags": m.flags}
                            for m in cd.changed],
            }
        return {"base": self.base, "new": self.new, "summary": self.counts(), "categories": cats}


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def field_changes(old: Any, new: Any, prefix: str = "") -> list[Change]:
    """Leaf-level differences as dotted paths; lists of unequal length count as one value."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            path = f"{prefix}.{k}" if prefix else str(k)
            if k not in new:
                out.append(Change(path, old=old[k]))
            elif k not in old:
                out.append(Change(path, new=new[k]))
            else:
                out += field_changes(old[k], new[k], path)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += field_changes(a, b, f"{prefix}.{i}")
        return out
    if _same_value(old, new):
        return []
    return [Change(prefix, old, new)]


def _downloads(rec: dict | None) -> list[dict]:
    config = (rec or {}).get("config")
    dl = config.get("download") if isinstance(config, dict) else None
    return [d for d in dl if isinstance(d, dict)] if isinstance(dl, list) else []


def host(url: Any) -> str:
    """The lower-cased host of a URL, or "" for anything that is not one."""
    if not isinstance(url, str) or not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _hosts(rec: dict | None) -> set[str]:
    return {h for h in (host(d.get("file_url")) for d in _downloads(rec)) if h}


def _short(value: Any) -> str:
    return value[:12] + "…" if isinstance(value, str) and len(value) > 16 else str(value)


def security_flags(old: dict | None, new: dict, known_hosts: set[str]) -> list[str]:
    """Why a reviewer should look twice: new download hosts, changed sha256, flipped nsfw."""
    flags = []
    seen = _hosts(old) if old is not None else known_hosts
    for h in sorted(_hosts(new) - seen):
        if old is None:
            flags.append(f"download host {h} (not used by any model before)")
        else:
            was = ", ".join(sorted(_hosts(old)))
            flags.append(f"download host {h}" + (f" (was {was})" if was else " (new)"))
    old_sha = {d.get("file_name"): d.get("sha256sum") for d in _downloads(old)}
    for d in _downloads(new):
        name, sha = d.get("file_name"), d.get("sha256sum")
        if old is not None and name in old_sha and old_sha[name] != sha:
            flags.append(f"sha256 of {name}: {_short(old_sha[name])} -> {_short(sha)}")
        elif old is not None and name not in old_sha:
            flags.append(f"new file {name} (sha256 {_short(sha)})")
        if sha in (None, "", "FIXME") and (old is None or old_sha.get(name) not in (None, "", "FIXME")):
            flags.append(f"{name} has no sha256")
    if old is not None and old.get("nsfw") != new.get("nsfw"):
        flags.append(f"nsfw: {json.dumps(old.get('nsfw'))} -> {json.dumps(new.get('nsfw'))}")
    return flags


def _is_security_path(c: Change) -> bool:
    if c.field == "nsfw" or c.field.endswith("sha256sum"):
        return True
    if c.field.endswith("file_url"):
        return host(c.old if c.old is not _ABSENT else None) != host(c.new if c.new is not _ABSENT else None)
    return c.field in ("config", "config.download")


def _model_changes(cat: str, base: Snapshot, new: Snapshot, old_key: str, key: str) -> list[Change]:
    changes = field_changes(base.v2[cat][old_key], new.v2[cat][key])
    if cat in new.v1 and old_key in base.v1.get(cat, {}) and key in new.v1[cat]:
        top = {c.field.split(".", 1)[0] for c in changes}
        for c in field_changes(base.v1[cat][old_key], new.v1[cat][key]):
            if c.field.split(".", 1)[0] not in top:  # the v2 change already says it
                c.field = f"v1.{c.field}"
                changes.append(c)
    for c in changes:
        c.security = _is_security_path(c)
    return changes


def _summary(rec: dict) -> str:
    parts = []
    if rec.get("baseline"):
        parts.append(f"baseline {rec['baseline']}")
    if "nsfw" in rec:
        parts.append(f"nsfw {json.dumps(rec['nsfw'])}")
    dls = _downloads(rec)
    if dls:
        hosts = ", ".join(sorted(_hosts(rec))) or "no URL"
        parts.append(f"{len(dls)} file(s) from {hosts}")
    return ", ".join(parts)


def compare(base: Snapshot, new: Snapshot) -> Diff:
    """What changed from `base` to `new`; a removed key whose published rename target was added is
    a rename."""
    known_hosts = {h for recs in base.v2.values() for r in recs.values() for h in _hosts(r)}
    cats: dict[str, CategoryDiff] = {}
    for cat in CATEGORIES:
        b, n = base.v2.get(cat.name, {}), new.v2.get(cat.name, {})
        cd = CategoryDiff()
        added = [k for k in n if k not in b]
        removed = [k for k in b if k not in n]
        renames = new.renames.get(cat.name, {})
        pairs = {old: renames[old] for old in removed if renames.get(old) in added}
        for old, key in pairs.items():
            m = ModelChange(key, _model_changes(cat.name, base, new, old, key), old_key=old)
            m.flags = security_flags(b[old], n[key], known_hosts)
            cd.renamed.append(m)
        targets = set(pairs.values())
        for key in added:
            if key not in targets:
                cd.added.append(ModelChange(key, flags=security_flags(None, n[key], known_hosts),
                                            summary=_summary(n[key])))
        cd.removed = [k for k in removed if k not in pairs]
        for key in n:
            if key in b:
                changes = _model_changes(cat.name, base, new, key, key)
                if changes:
                    cd.changed.append(ModelChange(key, changes, security_flags(b[key], n[key], known_hosts)))
        if cd:
            cats[cat.name] = cd
    return Diff(base.label, new.label, cats)


# --- rendering ------------------------------------------------------------------------------------

def _value(v: Any, limit: int = 100) -> str:
    if v is _ABSENT:
        return "(absent)"
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headline(d: Diff) -> str:
    c = d.counts()
    if not any(c[k] for k in ("added", "removed", "renamed", "changed")):
        return "no model changes"
    line = f"{c['added']} added, {c['removed']} removed, {c['renamed']} renamed, {c['changed']} changed"
    if c["security"]:
        line += f"; {c['security']} security-relevant change(s)"
    return line


def render_text(d: Diff) -> str:
    """The plain-text report: a headline, then per category one line per model (+ - > ~)."""
    lines = [f"{d.base} -> {d.new}: {_headline(d)}"]
    for cat, cd in d.categories.items():
        lines.append(f"{cat}:")
        for m in cd.added:
            lines.append(f"  + {m.key}" + (f"  ({m.summary})" if m.summary else ""))
            lines += [f"      [!] {f}" for f in m.flags]
        for key in cd.removed:
            lines.append(f"  - {key}")
        for m in cd.renamed:
            lines.append(f"  > {m.old_key} -> {m.key}")
            lines += _text_changes(m)
        for m in cd.changed:
            lines.append(f"  ~ {m.key}")
            lines += _text_changes(m)
    return "\n".join(lines) + "\n"


def _text_changes(m: ModelChange) -> list[str]:
    out = [f"      {c.field}: {_value(c.old)} -> {_value(c.new)}" + ("  [!]" if c.security else "")
           for c in m.changes]
    return out + [f"      [!] {f}" for f in m.flags]


def _cell(text: str) -> str:
    # GFM splits table cells at "|" even inside code spans, so escape it; a backtick would end the span
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def render_markdown(d: Diff, max_rows: int | None = None) -> str:
    """A pull-request comment: summary, security call-outs, per-category tables, field details."""
    out = ["### Model reference changes", "", f"{_code(d.base)} → {_code(d.new)}: **{_headline(d)}**", ""]
    flagged = [(cat, m) for cat, cd in d.categories.items() for m in cd.models() if m.flags]
    if flagged:
        out += ["> [!WARNING]", "> **Security-relevant changes** (download host, sha256, nsfw): check that the "
                "pull request cites a source for each.", ">"]
        for cat, m in flagged:
            for f in m.flags:
                out.append(f"> - {_code(cat + '/' + m.key)}: {_cell(f)}")
        out.append("")
    rows_left = max_rows
    for cat, cd in d.categories.items():
        out += [f"#### {cat}", "", "| | model | details |", "|---|---|---|"]
        out += [f"| added | {_code(m.key)} | {_cell(m.summary)} |" for m in cd.added]
        out += [f"| removed | {_code(k)} | |" for k in cd.removed]
        out += [f"| renamed | {_code(m.old_key or '')} → {_code(m.key)} | {len(m.changes)} field(s) |"
                for m in cd.renamed]
        out += [f"| changed | {_code(m.key)} | {len(m.changes)} field(s)" + (" ⚠️" if m.flags else "") + " |"
                for m in cd.changed]
        out.append("")
        detailed = cd.renamed + cd.changed
        if detailed:
            out += ["<details><summary>Changed fields</summary>", "", "| model | field | old | new |",
                    "|---|---|---|---|"]
            for m in detailed:
                for c in m.changes:
                    if rows_left is not None:
                        if rows_left <= 0:
                            break
                        rows_left -= 1
                    mark = " ⚠️" if c.security else ""
                    out.append(f"| {_code(m.key)} | {_code(c.field)}{mark} | {_code(_value(c.old, 80))} | "
                               f"{_code(_value(c.new, 80))} |")
            out += ["", "</details>", ""]
    if rows_left is not None and rows_left <= 0:
        out += ["_Some changed fields are not shown (comment size limit); run `hmr diff` locally or read the "
                "JSON diff for all of them._", ""]
    return "\n".join(out)


def render(d: Diff, fmt: str) -> str:
    """The diff as `text`, `markdown` (kept under GitHub's comment size limit) or `json`."""
    if fmt == "json":
        return json.dumps(d.as_json(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "markdown":
        text = render_markdown(d)
        rows = 2000
        while len(text) > MARKDOWN_LIMIT and rows > 0:
            text = render_markdown(d, max_rows=rows)
            rows //= 2
        if len(text) > MARKDOWN_LIMIT:
            text = text[:MARKDOWN_LIMIT] + "\n\n_(truncated)_\n"
        return text
    return render_text(d)


def diff(base: str, new: str, repo: Path | None = None, data_dir: Path = Path("data")) -> Diff:
    """The semantic diff of two builds, each a site directory, a data directory or a git ref (of
    `repo`, by default the repository holding `data_dir`); what `hmr diff` prints.

    Raises:
        ConfigError: BASE or NEW is none of these.
        DataError: the data of one side does not validate.
    """
    return compare(resolve(base, repo, data_dir), resolve(new, repo, data_dir))

