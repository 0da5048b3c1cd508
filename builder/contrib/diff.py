"""`hmr diff BASE NEW`: what changed, model by model and field by field, between two builds.

BASE and NEW are each a built site directory, a data directory, or a git ref (its `data/` is read
with `git archive` and compiled in memory by the same code as `hmr build`; nothing is written to the
working tree). The comparison reads what is published: the v2 category files (every field a client
sees), the v1 legacy files of the image-repo categories (fields only the legacy format carries,
reported as `v1.<field>`) and `renames.json` (a removed key whose rename target was added is a
rename, not a removal plus an addition).

Security-relevant changes are flagged: a download from a host the model did not use before (for a
new model: a host no model used before), a changed or dropped sha256, a flipped nsfw flag.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from builder.categories import CATEGORIES
from builder.errors import DataError, HmrError

V1 = "api/model_references/v1"
V2 = "api/model_references/v2"
#: GitHub refuses comments over 65536 characters; stay well below
MARKDOWN_LIMIT = 60000
_ABSENT: Any = object()


@dataclass
class Snapshot:
    label: str
    #: category -> key -> v2 record, in published order
    v2: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: category -> key -> legacy record (image-repo JSON categories only)
    v1: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: category -> former key -> current key
    renames: dict[str, dict[str, str]] = field(default_factory=dict)


def snapshot_from(label: str, read: Callable[[str], bytes | None]) -> Snapshot:
    """A snapshot from a site's files (`read(relative path)` -> bytes, or None when absent)."""
    snap = Snapshot(label)
    for cat in CATEGORIES:
        raw = read(f"{V2}/{cat.name}.json")
        snap.v2[cat.name] = _object(label, cat.name, raw)
        if cat.legacy_kind in ("image", "generic"):
            snap.v1[cat.name] = _object(label, f"v1 {cat.name}", read(f"{V1}/{cat.name}.json"))
    renames = _object(label, "renames", read(f"{V2}/renames.json"))
    snap.renames = {c: r for c, r in renames.items() if isinstance(r, dict)}
    return snap


def _object(label: str, what: str, raw: bytes | None) -> dict:
    if raw is None:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise HmrError(f"{label}: {what} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise HmrError(f"{label}: {what} is not a JSON object")
    return value


def snapshot_of_site(site_dir: Path, label: str | None = None) -> Snapshot:
    if not (site_dir / V2).is_dir():
        raise HmrError(f"{site_dir}: not a built site (no {V2}/)")

    def read(rel: str) -> bytes | None:
        p = site_dir / rel
        return p.read_bytes() if p.is_file() else None

    return snapshot_from(label or str(site_dir), read)


def snapshot_of_data(data_dir: Path, label: str | None = None, cache_of: Path | None = None) -> Snapshot:
    """Validate and compile `data_dir` in memory (the bytes `hmr build` would write), then read them.

    `cache_of`: a data directory whose record cache may serve unchanged files (read only: a temporary
    directory's own cache would only pile up)."""
    from builder.errors import ValidationFailed
    from builder.load import load_valid
    from builder.site.outputs import compile_outputs

    name = label or str(data_dir)
    try:
        cats, _ = load_valid(data_dir, cache_from=cache_of)
    except ValidationFailed as e:
        errors = [p for p in e.problems if p.severity == "error"]
        raise DataError(f"{name}: the data does not validate ({len(errors)} problem(s); first: {errors[0]})") from None
    files = compile_outputs(cats)
    return snapshot_from(name, files.get)


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary, timeout=120)


def snapshot_of_ref(ref: str, repo: Path, data_dir: Path) -> Snapshot:
    """The data of git `ref` (the path of `data_dir` inside `repo`), compiled in memory."""
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise HmrError(f"{ref}: not a directory, and {repo} is not in a git repository")
    root = Path(top.stdout.strip())
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise HmrError(f"{ref}: neither a directory nor a git ref of {root}")
    sha = commit.stdout.strip()
    try:
        rel = data_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise HmrError(f"{data_dir} is not inside the git repository {root}") from None
    with tempfile.TemporaryDirectory(prefix="hmr-diff-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        # pyproject.toml comes along: it says which format that commit's data/ holds
        paths = [p for p in (rel, "pyproject.toml") if _git(root, "cat-file", "-e", f"{sha}:{p}").returncode == 0]
        if paths:
            archive = _git(root, "archive", "--format=tar", sha, "--", *paths, binary=True)
            if archive.returncode != 0:
                raise HmrError(f"{ref}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
            tar_path = Path(tmp) / "data.tar"
            tar_path.write_bytes(archive.stdout)
            with tarfile.open(tar_path) as tf:
                _extract(tf, src)
        (src / rel).mkdir(parents=True, exist_ok=True)  # a commit from before data/ existed: nothing
        return snapshot_of_data(src / rel, f"{ref} ({sha[:12]})", cache_of=data_dir if data_dir.is_dir() else None)


def _extract(tf: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and folders only, never outside `dest` (the "data" filter where Python has it)."""
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        tf.extractall(dest, filter="data")
        return
    for m in tf.getmembers():
        parts = Path(m.name).parts
        if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts:
            raise HmrError(f"git archive holds an unexpected entry {m.name!r}")
    tf.extractall(dest)  # noqa: S202 - members checked above


def resolve(spec: str, repo: Path | None = None, data_dir: Path = Path("data")) -> Snapshot:
    """BASE/NEW of `hmr diff`: a site directory, a data directory, or a git ref (of `repo`, by default
    the repository holding `data_dir`)."""
    p = Path(spec)
    if p.is_dir():
        if (p / V2).is_dir():
            return snapshot_of_site(p)
        if any((p / c.name).is_dir() for c in CATEGORIES):
            return snapshot_of_data(p)
        raise HmrError(f"{spec}: neither a built site (no {V2}/) nor a data directory")
    if repo is None:
        repo = data_dir if data_dir.is_dir() else Path(".")
    return snapshot_of_ref(spec, repo, data_dir)


# --- the comparison -------------------------------------------------------------------------------

@dataclass
class Change:
    field: str
    old: Any = _ABSENT
    new: Any = _ABSENT
    security: bool = False

    def as_json(self) -> dict:
        out: dict[str, Any] = {"field": self.field}
        if self.old is not _ABSENT:
            out["old"] = self.old
        if self.new is not _ABSENT:
            out["new"] = self.new
        out["security"] = self.security
        return out


@dataclass
class ModelChange:
    key: str
    changes: list[Change] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    #: for a rename: the former key
    old_key: str | None = None
    #: for an addition: a one-line description (baseline, nsfw, download hosts)
    summary: str = ""


@dataclass
class CategoryDiff:
    added: list[ModelChange] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[ModelChange] = field(default_factory=list)
    changed: list[ModelChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.changed)

    def models(self) -> list[ModelChange]:
        return self.added + self.renamed + self.changed


@dataclass
class Diff:
    base: str
    new: str
    categories: dict[str, CategoryDiff]

    def counts(self) -> dict[str, int]:
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
    """The semantic diff of two builds, each a site directory, a data directory or a git ref."""
    return compare(resolve(base, repo, data_dir), resolve(new, repo, data_dir))

