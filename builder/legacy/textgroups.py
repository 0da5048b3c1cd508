"""Text model groups: the base name shared by the sizes, versions and quantisations of one model.

The rules are the existing library's (horde-model-reference 8.6.2, `analytics.text_model_parser`),
because its clients compare our answers with its own: a name is parsed by removing, in this order,
a leading dotted version (`4.2.0-`), the first size token (`12B`, `1.5B`, `7B1`, then `8x7B`), a
`v`-version, a quantisation, a variant word and a date; what is left, with doubled separators
collapsed and the edges trimmed, is the base. `base_name` first drops the backend prefix and the
author: `acrastt/Marx-3B-V3` -> `Marx`, `anthracite-org/magnum-12b-v2` -> `magnum`. v2 text records
carry it as `text_model_group`.

`include_group` makes the old API's `v1/text_generation?include_group=true` variant: every db.json
entry gains `text_model_group` and the `text_model_group_summary` of its group. As in the old API,
a group's members are all db.json entries with that group, the `aphrodite/` and `koboldcpp/` copies
included, and the names are parsed as they are (prefixes and all).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BACKEND_PREFIXES = ("aphrodite/", "koboldcpp/")
SEPARATORS = "-_ ."

# The token kinds, each a list of alternatives tried in turn (the first that matches anywhere wins).
# `_` is a word character, so `\b` does not fire at `Eclipse_12B`: sizes use letter look-arounds.
_LEADING = re.compile(r"^(\d+\.\d+(?:\.\d+)?)[_-]")
_SIZES = (r"(?<![a-z])(\d+\.?\d*[bmk]\d*)(?![a-z])", r"(?<![a-z])(\d+x\d+[bmk])(?![a-z])")
_VERSIONS = (r"(?<![a-z0-9])(v\d+(?:\.\d+)+)(?![a-z0-9])", r"(?<![a-z0-9])(v\d+)(?![a-z0-9.])")
_QUANTS = (r"\b(q[2-8]_k(?:_[smlh])?)\b", r"\b(q[2-8]_[01])\b", r"\b(q[2-8])\b", r"\b(gguf|ggml|gptq|awq|exl2)\b",
           r"\b(fp16|fp32|int8|int4)\b")
_VARIANTS = (r"\b(instruct|chat|code|base|uncensored|finetune|ft)\b", r"\b(thinking|reasoning)\b",
             r"\b(turbo|preview|latest)\b")
# dates are digits only; the library matches them case-sensitively, which changes nothing
_DATES = (r"(?<![a-zA-Z0-9])(\d{2}-\d{4})(?![a-zA-Z0-9])", r"(?<![a-zA-Z0-9])(\d{4}-\d{2})(?![a-zA-Z0-9])",
          r"(?<![a-zA-Z0-9])(\d{4})(?![a-zA-Z0-9])")
_SIZE_LABEL = re.compile(r"(?:(\d+(?:\.\d+)?)x)?(\d+(?:\.\d+)?)([kmbt])\d*", re.I)
_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


@functools.cache
def _compiled() -> dict[str, tuple[re.Pattern, ...]]:
    """The token patterns, compiled on first use (a build whose groups are memoized never compiles)."""
    return {
        "size": tuple(re.compile(p, re.I) for p in _SIZES),
        "version": tuple(re.compile(p, re.I) for p in _VERSIONS),
        "quant": tuple(re.compile(p, re.I) for p in _QUANTS),
        "variant": tuple(re.compile(p, re.I) for p in _VARIANTS),
        "date": tuple(re.compile(p) for p in _DATES),
    }


@dataclass(frozen=True)
class Extra:
    """A name segment outside the primary parts: a date or a leading version (`kind` "DATE" or
    "LEADING_VERSION", as the library labels them), with its ordinal among the separators."""

    value: str
    position: int
    kind: str


@dataclass(frozen=True)
class ParsedName:
    """What the name rules found in one name: the base and the optional size (upper case), variant,
    quant (upper case), version, and the extra segments."""

    original: str
    base: str
    size: str | None = None
    variant: str | None = None
    quant: str | None = None
    version: str | None = None
    extras: tuple[Extra, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The parse as the old API's `parse_name` answers it (without `suggested_group`)."""
        return {"original_name": self.original, "base_name": self.base, "size": self.size, "variant": self.variant,
                "quant": self.quant, "version": self.version,
                "extras": [{"value": e.value, "position": e.position, "inferred_type": e.kind}
                           for e in self.extras]}


def strip_backend(name: str) -> str:
    """`name` without its `aphrodite/` or `koboldcpp/` prefix."""
    for p in BACKEND_PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def _separators_before(text: str, end: int) -> int:
    return sum(1 for c in text[:end] if c in SEPARATORS)


@functools.cache
def parse_name(name: str) -> ParsedName:
    """The parts of a text model name, as the name rules (module docstring) find them."""
    rest = name
    extras: list[Extra] = []
    found: dict[str, str] = {}
    m = _LEADING.match(rest)
    if m:
        extras.append(Extra(m.group(1), 0, "LEADING_VERSION"))
        rest = rest[m.end():]
    for kind, alternatives in _compiled().items():
        for rx in alternatives:
            m = rx.search(rest)
            if m is None:
                continue
            if kind == "date":
                # the library counts the separators in the full name up to where the date sits in
                # what is left of it: kept, since the positions are part of its answers
                extras.append(Extra(m.group(1), _separators_before(name, m.start()), "DATE"))
            else:
                found[kind] = m.group(1).upper() if kind in ("size", "quant") else m.group(1)
            rest = rest[: m.start()] + rest[m.end():]
            break
    base = re.sub(r"([-_ .])\1+", r"\1", rest).strip(SEPARATORS) or name
    return ParsedName(name, base, found.get("size"), found.get("variant"), found.get("quant"), found.get("version"),
                      tuple(extras))


def base_name(name: str) -> str:
    """The group a text model belongs to: the base of its name without backend prefix and author."""
    short = strip_backend(name)
    if "/" in short:
        short = short.split("/", 1)[1]
    return parse_name(short).base


def group_text_models_by_base(names: Iterable[str]) -> dict[str, list[str]]:
    """Base name -> the names in it, in the order given."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(base_name(n), []).append(n)
    return groups


def size_sort_key(size: str) -> tuple[int, float, str]:
    """Order of size labels: by parameter count (`8x7B` = 56e9), unknown labels last, alphabetically."""
    label = size.strip()
    m = _SIZE_LABEL.fullmatch(label)
    if m is None:
        return (1, 0.0, label.casefold())
    return (0, float(m.group(1) or 1) * float(m.group(2)) * _UNITS[m.group(3).lower()], label.casefold())


def _dominant_separator(names: Sequence[str]) -> str:
    # separators inside quant tokens (Q4_K_M) do not count
    quants = _compiled()["quant"]
    hyphens = underscores = 0
    for n in names:
        for rx in quants:
            n = rx.sub("", n)
        hyphens += n.count("-")
        underscores += n.count("_")
    return "_" if underscores > hyphens else "-"


def _part_order(name: str, p: ParsedName) -> list[str]:
    """The part labels of `p` in the order their text first appears in `name` (case-insensitive)."""
    parts = {k: v for k, v in (("base", p.base), ("size", p.size), ("variant", p.variant), ("version", p.version),
                               ("quant", p.quant)) if v}
    for e in p.extras:
        parts["extra:" + e.kind] = e.value
    lower = name.lower()
    at = {k: lower.find(v.lower()) for k, v in parts.items()}
    return sorted((k for k in parts if at[k] >= 0), key=lambda k: at[k])


def name_format(names: Sequence[str]) -> dict[str, Any]:
    """How a group's names are built: `{separator, part_order, author_included, common_author, template}`.

    The author is what precedes the first "/" (for a backend copy, the backend); the part order is
    that of the member with the most parts (the first such member).
    """
    if not names:
        return {"separator": "-", "part_order": ["base", "size", "variant", "version", "quant"],
                "author_included": False, "common_author": None, "template": "{base}-{size}"}
    authors = {n.partition("/")[0] for n in names if "/" in n}
    rests = [n.partition("/")[2] if "/" in n else n for n in names]
    sep = _dominant_separator(rests)
    parsed = [parse_name(r) for r in rests]
    richness = [sum(1 for v in (p.size, p.variant, p.version, p.quant) if v) + len(p.extras) for p in parsed]
    best = richness.index(max(richness))
    order = _part_order(rests[best], parsed[best])
    return {
        "separator": sep,
        "part_order": order,
        "author_included": bool(authors),
        "common_author": next(iter(authors)) if len(authors) == 1 else None,
        "template": ("{author}/" if authors else "") + sep.join(f"{{{k}}}" for k in order),
    }


def summarize(members: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`text_model_group_summary` of one group, from its members' db.json entries (name -> entry):
    member_count, available_sizes (smallest first), available_quants, common_baseline (the one
    non-empty baseline, else null), any_nsfw, any_has_description, merged_tags and name_format."""
    parsed = [parse_name(n) for n in members]
    baselines = {str(e["baseline"]) for e in members.values() if e.get("baseline")}
    tags: set[str] = set()
    for e in members.values():
        if isinstance(e.get("tags"), list):
            tags.update(str(t) for t in e["tags"])
    return {
        "member_count": len(members),
        "available_sizes": sorted({p.size for p in parsed if p.size}, key=size_sort_key),
        "available_quants": sorted({p.quant for p in parsed if p.quant}),
        "common_baseline": next(iter(baselines)) if len(baselines) == 1 else None,
        "any_nsfw": any(bool(e.get("nsfw")) for e in members.values()),
        "any_has_description": any(bool(e.get("description")) for e in members.values()),
        "merged_tags": sorted(tags),
        "name_format": name_format(list(members)),
    }


def group_summaries(db: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group -> summary over every db.json entry (backend copies included), groups in first-seen order."""
    groups = group_text_models_by_base(db)
    return {g: summarize({n: db[n] for n in names}) for g, names in groups.items()}


def include_group(db: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """db.json with `text_model_group` and `text_model_group_summary` added to every entry."""
    summaries = group_summaries(db)
    out: dict[str, dict[str, Any]] = {}
    for name, entry in db.items():
        group = base_name(name)
        out[name] = {**entry, "text_model_group": group, "text_model_group_summary": summaries[group]}
    return out
