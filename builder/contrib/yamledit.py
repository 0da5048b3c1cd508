"""Rewrite a YAML mapping file with new content while keeping what did not change, byte for byte.

PyYAML loses comments, so dumping an edited record wholesale would erase a contributor's notes and
reformat every line. Instead the file is cut into its top-level blocks (a top-level key with
everything indented under it, plus the column-0 comments just above it); a block whose value is
unchanged is kept verbatim, a changed one is dumped again in the file's own list-indentation style,
a new key goes after its nearest predecessor in the wanted order, a removed key's block goes away.
The result is parsed back and must equal the wanted data; if it does not (an exotic layout the cut
cannot handle), the file is dumped whole instead, keeping its leading comment lines (schema hint).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from builder.records import dump_yaml

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _YamlLoader = yaml.SafeLoader

# A top-level key line: column 0, not a comment, not a list item, not a document marker.
_TOP = re.compile(r"^(?![\s#\-]|\.\.\.(\s|$)|---(\s|$))\S")
_INDENTED_SEQ = re.compile(r"^( *)\S[^\n]*:[ \t]*\n\1 +- ", re.M)
_INDENTLESS_SEQ = re.compile(r"^( *)\S[^\n]*:[ \t]*\n\1- ", re.M)


class _IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key (`key:\\n  - a`), the style of hand-written files."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def dump_like(value: Any, text: str) -> str:
    """YAML for `value` in the list-indentation style that `text` mostly uses."""
    if len(_INDENTED_SEQ.findall(text)) > len(_INDENTLESS_SEQ.findall(text)):
        return yaml.dump(value, Dumper=_IndentedDumper, sort_keys=False, allow_unicode=True, width=1 << 30,
                         default_flow_style=False)
    return dump_yaml(value)


def same(a: Any, b: Any) -> bool:
    """Equality that also tells 1 from 1.0 from True (all equal for ==) and respects key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def header_lines(text: str) -> str:
    """The comment/blank lines a file starts with (the schema hint and any notes)."""
    out = []
    for line in text.splitlines(keepends=True):
        if line.strip() == "" or line.lstrip().startswith("#"):
            out.append(line)
        else:
            break
    return "".join(out)


def _split(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(header, [(key, block text)]) or None when the file is not a plain top-level mapping."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    starts = [i for i, line in enumerate(lines) if _TOP.match(line)]
    if not starts:
        return None
    # column-0 comments (and blank lines) right above a key belong to that key
    cuts = []
    for s in starts:
        c = s
        while c > 0 and (lines[c - 1].startswith("#") or lines[c - 1].strip() == ""):
            c -= 1
        cuts.append(c)
    cuts[0] = starts[0] if cuts[0] == 0 else cuts[0]
    header = "".join(lines[: cuts[0]])
    blocks = []
    for n, c in enumerate(cuts):
        end = cuts[n + 1] if n + 1 < len(cuts) else len(lines)
        chunk = "".join(lines[c:end])
        try:
            parsed = yaml.load(chunk, Loader=_YamlLoader)
        except yaml.YAMLError:
            return None
        if not isinstance(parsed, dict) or len(parsed) != 1:
            return None
        blocks.append((next(iter(parsed)), chunk))
    if len({k for k, _ in blocks}) != len(blocks):
        return None
    return header, blocks


def patch_yaml(text: str, new: dict, order_hint: list[str] | None = None) -> str:
    """`text` rewritten to hold `new`, keeping unchanged top-level blocks (and their comments) verbatim.

    `order_hint`: the order new keys should follow (default: the order of `new`); existing keys keep
    their place in the file.
    """
    try:
        old = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError:
        old = None
    split = _split(text) if isinstance(old, dict) else None
    if split is not None:
        header, blocks = split
        existing = dict(blocks)
        order = [k for k, _ in blocks if k in new]
        base = order_hint or list(new)
        hint = [k for k in base if k in new] + [k for k in new if k not in base]
        for i, k in enumerate(hint):
            if k in order:
                continue
            before = [p for p in hint[:i] if p in order]
            order.insert(order.index(before[-1]) + 1 if before else 0, k)
        parts = [header]
        for k in order:
            if k in existing and same(old.get(k), new[k]):
                parts.append(existing[k])
                continue
            comments = header_lines(existing[k]) if k in existing else ""
            parts.append(comments + dump_like({k: new[k]}, text))
        result = "".join(parts)
        try:
            if same(yaml.load(result, Loader=_YamlLoader), {k: new[k] for k in order}):
                return result
        except yaml.YAMLError:
            pass
    return header_lines(text) + dump_like(new, text)


def render_json(new: dict, text: str = "") -> str:
    """A JSON record file: two-space indentation (or tabs, if the old text used them)."""
    indent: Any = "\t" if "\n\t" in text else 2
    return json.dumps(new, indent=indent, ensure_ascii=False) + "\n"
