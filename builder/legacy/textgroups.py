"""Text model groups: the base name shared by the sizes, versions and quantisations of one model.

`base_name` follows the base-name rules of the existing library (`reference/formats.md` §5.3): strip
the backend and author prefixes, then the first size, `v`-version, quantisation, variant and date
token, collapse the separators left behind. `acrastt/Marx-3B-V3` -> `Marx`,
`anthracite-org/magnum-12b-v2` -> `magnum`. v2 text records carry it as `text_model_group`.

`include_group` makes the old API's `v1/text_generation?include_group=true` variant: every db.json
entry gains `text_model_group` and a `text_model_group_summary` of its group. The summary fields are
the old API's; their values are defined here (documented on `GroupSummary`), from the group's
canonical members (the `aphrodite/` and `koboldcpp/` copies of a model are not extra members).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BACKEND_PREFIXES = ("aphrodite/", "koboldcpp/")
SEPARATORS = "-_ ."


@functools.cache
def _patterns() -> tuple[re.Pattern, tuple, re.Pattern]:
    """(leading version, (kind, patterns) per token kind in removal order, doubled separator), compiled
    on first use: a build that finds the groups in its memo never pays for compiling them."""
    # Sizes (12B, 1.5B, 350M, 4B1, then 8x7B) must not touch letters; the plain form is searched first,
    # so in `8x22B` it finds `2B` (the existing library's groups depend on it: `Mixtral-8x22B` -> `Mixtral-8x2`).
    sizes = (re.compile(r"(?<![a-z])\d+\.?\d*[bmk]\d*(?![a-z])", re.I),
             re.compile(r"(?<![a-z])\d+x\d+[bmk](?![a-z])", re.I))
    # the other tokens are whole words: `_` is a word character, so `lzlv_70b_fp16_hf` keeps its `fp16`
    version = re.compile(r"\bv\d+(?:\.\d+)*\b", re.I)
    quant = re.compile(r"\b(?:q\d(?:_k)?(?:_[a-z0-9]+)?|gguf|ggml|gptq|awq|exl2|fp16|fp32|int8|int4)\b", re.I)
    variant = re.compile(r"\b(?:instruct|chat|code|base|uncensored|finetune|ft|thinking|reasoning|turbo|preview|"
                         r"latest)\b", re.I)
    date = re.compile(r"\b(?:[01]\d-\d{4}|\d{4}-[01]\d|\d{4})\b")
    tokens = (("size", sizes), ("version", (version,)), ("quant", (quant,)), ("variant", (variant,)),
              ("date", (date,)))
    # a separator doubled by a removal (`MN--Starcannon`); mixed pairs such as `_-` stay as they are
    return re.compile(r"^\d+\.\d+(?:\.\d+)?[-_]"), tokens, re.compile(r"([-_ .])\1+")


@dataclass(frozen=True)
class NameParts:
    """What the base-name rules found in one name (for the group summaries)."""

    author: str | None
    base: str
    size: str | None
    version: str | None
    quant: str | None
    variant: str | None
    date: str | None
    #: the kinds of the parts, in the order they appear in the name (author first)
    order: tuple[str, ...]
    separator: str | None


def strip_backend(name: str) -> str:
    """`name` without its `aphrodite/` or `koboldcpp/` prefix."""
    for p in BACKEND_PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def _split_author(name: str) -> tuple[str | None, str]:
    short = strip_backend(name)
    if "/" in short:
        author, short = short.split("/", 1)
        return author, short
    return None, short


@functools.cache
def _strip_tokens(short: str) -> tuple[str, tuple[tuple[str, int, str], ...]]:
    """(base, the removed tokens as (kind, position in `short`, text)) of a name without its prefixes."""
    leading, tokens, doubled = _patterns()
    rest = leading.sub("", short, count=1)
    found = []
    for kind, rxs in tokens:
        for rx in rxs:
            m = rx.search(rest)
            if m:
                found.append((kind, short.find(m.group(0)), m.group(0)))
                rest = rest[: m.start()] + rest[m.end():]
                break
    return doubled.sub(r"\1", rest).strip(SEPARATORS), tuple(found)


def base_name(name: str) -> str:
    """The group a text model belongs to: its name without author, size, version, quant, variant, date."""
    base = _strip_tokens(_split_author(name)[1])[0]
    return base or name


def parse_name(name: str) -> NameParts:
    """The parts of a text model name (author, base, size, version, quant, variant, date) and their order."""
    author, short = _split_author(name)
    base, found = _strip_tokens(short)
    if not base:
        base = name
    tokens = {kind: text for kind, _pos, text in found}
    base_at = short.find(base) if base in short else 0
    order = [k for _, k in sorted([(base_at, "base")] + [(pos, kind) for kind, pos, _ in found])]
    if author is not None:
        order.insert(0, "author")
    seps = Counter(c for c in short if c in SEPARATORS)
    return NameParts(
        author=author, base=base, size=tokens.get("size"), version=tokens.get("version"),
        quant=tokens.get("quant"), variant=tokens.get("variant"), date=tokens.get("date"),
        order=tuple(order), separator=seps.most_common(1)[0][0] if seps else None,
    )


def group_text_models_by_base(names: Iterable[str]) -> dict[str, list[str]]:
    """Base name -> the names in it, in the order given."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(base_name(n), []).append(n)
    return groups


@dataclass(frozen=True)
class GroupSummary:
    """`text_model_group_summary` of one group, over its canonical members (no backend prefix):

    - member_count: how many models the group has;
    - available_sizes: the size tokens of the members' names (upper case), smallest first;
    - available_quants: their quantisation tokens (upper case), sorted;
    - common_baseline: the baseline every member shares, else null;
    - any_nsfw / any_has_description: whether some member is nsfw / has a non-empty description;
    - merged_tags: the union of the members' tags, sorted;
    - name_format: how the names are built: the most common separator, the part order of the most
      common shape (e.g. ["author", "base", "size", "version"]), whether names carry an author, the
      author all members share (else null), and a template such as "{author}/{base}-{size}-{version}".
    """

    member_count: int
    available_sizes: list[str]
    available_quants: list[str]
    common_baseline: str | None
    any_nsfw: bool
    any_has_description: bool
    merged_tags: list[str]
    name_format: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The summary as the metadata document publishes it (field order included)."""
        return {
            "member_count": self.member_count,
            "available_sizes": self.available_sizes,
            "available_quants": self.available_quants,
            "common_baseline": self.common_baseline,
            "any_nsfw": self.any_nsfw,
            "any_has_description": self.any_has_description,
            "merged_tags": self.merged_tags,
            "name_format": self.name_format,
        }


def _size_value(token: str) -> float:
    t = token.lower()
    if "x" in t:
        a, b = t[:-1].split("x", 1)
        return float(a) * float(b) * {"b": 1e9, "m": 1e6, "k": 1e3}[t[-1]]
    m = re.match(r"(\d+\.?\d*)([bmk])", t)
    return float(m.group(1)) * {"b": 1e9, "m": 1e6, "k": 1e3}[m.group(2)] if m else 0.0


def summarize(members: Mapping[str, Mapping[str, Any]]) -> GroupSummary:
    """The summary of one group, from its canonical members' db.json entries (name -> entry)."""
    parts = {n: parse_name(n) for n in members}
    sizes = sorted({p.size.upper() for p in parts.values() if p.size}, key=lambda s: (_size_value(s), s))
    quants = sorted({p.quant.upper() for p in parts.values() if p.quant})
    baselines = {e.get("baseline") or None for e in members.values()}
    authors = {p.author for p in parts.values()}
    shapes = Counter(p.order for p in parts.values())
    order = list(min(shapes.items(), key=lambda kv: (-kv[1], kv[0]))[0]) if shapes else []
    seps = Counter(p.separator for p in parts.values() if p.separator)
    sep = min(seps.items(), key=lambda kv: (-kv[1], kv[0]))[0] if seps else "-"
    body = [f"{{{k}}}" for k in order if k != "author"]
    template = sep.join(body)
    if "author" in order:
        template = "{author}/" + template
    tags: set[str] = set()
    for e in members.values():
        tags.update(t for t in e.get("tags") or () if isinstance(t, str))
    return GroupSummary(
        member_count=len(members),
        available_sizes=sizes,
        available_quants=quants,
        common_baseline=baselines.pop() if len(baselines) == 1 else None,
        any_nsfw=any(bool(e.get("nsfw")) for e in members.values()),
        any_has_description=any(bool(e.get("description")) for e in members.values()),
        merged_tags=sorted(tags),
        name_format={
            "separator": sep,
            "part_order": order,
            "author_included": any(a is not None for a in authors),
            "common_author": authors.pop() if len(authors) == 1 else None,
            "template": template,
        },
    )


def include_group(db: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """db.json with `text_model_group` and `text_model_group_summary` added to every entry."""
    canonical = {n: e for n, e in db.items() if not n.startswith(BACKEND_PREFIXES)}
    groups = group_text_models_by_base(canonical)
    summaries = {g: summarize({n: canonical[n] for n in names}).as_dict() for g, names in groups.items()}
    out: dict[str, dict[str, Any]] = {}
    for name, entry in db.items():
        group = base_name(name)
        summary = summaries.get(group)
        if summary is None:  # a backend copy whose canonical entry is missing: a group of its own
            summary = summarize({strip_backend(name): entry}).as_dict()
        out[name] = {**entry, "text_model_group": group, "text_model_group_summary": summary}
    return out
