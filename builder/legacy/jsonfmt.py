"""Byte layouts of the legacy JSON files (formats.md §3), produced fast.

The upstream files are `json.dumps(value, indent=4 or "\\t") + "\\n"` (ensure_ascii on). The stdlib
encoder is pure Python once `indent` is set, so we let orjson (C) write indent-2 JSON, re-indent it and
escape non-ASCII the way the stdlib does. Where orjson's number format differs from `repr` (floats
under 1e-4) or it cannot encode a value (ints beyond 64 bits), the stdlib writes it instead: the bytes
are identical either way, which the tests check against the stdlib on the corpus and random records.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# orjson spells small floats as 0.00001 or 1.5e-7 where repr() gives 1e-05 / 1.5e-07
_NUMBER_MISMATCH = re.compile(r'(?:^|: |\n\s*|\[)-?(?:0\.0000|\d+(?:\.\d+)?e-[1-9])')
_NON_ASCII = re.compile("[\x7f-\U0010ffff]")
_MAX_DEPTH = 64


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xD800 | (c >> 10):04x}\\u{0xDC00 | (c & 0x3FF):04x}"


def stdlib_dumps(value: Any, indent: int | str) -> str:
    """The reference layout, written by the stdlib (slow): what `dumps_indented` must equal."""
    return json.dumps(value, indent=indent) + "\n"


def dumps_indented(value: Any, indent: int | str) -> str:
    """Exactly `json.dumps(value, indent=indent) + "\\n"`."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        return stdlib_dumps(value, indent)
    if _NUMBER_MISMATCH.search(text):
        return stdlib_dumps(value, indent)
    # Leading runs of two spaces become tabs, deepest first so a shallower pattern never matches a
    # converted line; raw tabs cannot occur elsewhere (JSON escapes them inside strings).
    depth = 1
    while "\n" + "  " * (depth + 1) in text and depth < _MAX_DEPTH:
        depth += 1
    for d in range(depth, 0, -1):
        text = text.replace("\n" + "  " * d, "\n" + "\t" * d)
    unit = indent if isinstance(indent, str) else " " * indent
    if unit != "\t":
        text = text.replace("\t", unit)
    text = _NON_ASCII.sub(_escape, text)
    return text + "\n"


def dumps_legacy(value: Any, layout: str | None) -> bytes:
    """stable_diffusion.json / db.json (indent 4) or the tab-indented utility files, plus LF."""
    return dumps_indented(value, "\t" if layout == "tab" else 4).encode("ascii")


def dumps_settings(value: Any) -> bytes:
    """The text repo's defaults.json / generation_params.json layout."""
    return dumps_indented(value, 2).encode("ascii")
