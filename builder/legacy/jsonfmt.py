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


def dumps_legacy(value: Any, layout: str | None, quirks: dict | None = None) -> bytes:
    """stable_diffusion.json / db.json (indent 4) or the tab-indented utility files, plus LF; `quirks`
    (a category's `legacy_layout` settings, see `detect_layout`) changes the indent, the escaping,
    the line ending and the final newline to what the imported file had."""
    indent: int | str = "\t" if layout == "tab" else 4
    if not quirks:
        return dumps_indented(value, indent).encode("ascii")
    indent = quirks.get("indent", indent)
    if quirks.get("ascii", True):
        text = dumps_indented(value, indent)
    else:
        text = json.dumps(value, indent=indent, ensure_ascii=False) + "\n"
    return apply_line_layout(text, quirks).encode("utf-8")


def apply_line_layout(text: str, quirks: dict) -> str:
    """`text` (LF, with a final newline) with the line ending and final newline of `quirks`."""
    if quirks.get("final_newline", True) is False and text.endswith("\n"):
        text = text[:-1]
    if quirks.get("line_ending") == "crlf":
        text = text.replace("\n", "\r\n")
    return text


def line_layout(raw: bytes, default_ending: str = "lf") -> dict:
    """The line ending (when every line break is CRLF, or none is) and the missing final newline of
    `raw`, as `legacy_layout` settings: only what differs from the defaults (`default_ending`, a
    final newline)."""
    out: dict = {}
    breaks, crlf = raw.count(b"\n"), raw.count(b"\r\n")
    ending = "crlf" if breaks and crlf == breaks else "lf" if crlf == 0 else default_ending
    if ending != default_ending:
        out["line_ending"] = ending
    if raw and not raw.endswith(b"\n"):
        out["final_newline"] = False
    return out


def detect_layout(raw: bytes, value: Any, layout: str | None) -> dict:
    """The `legacy_layout` settings that make `dumps_legacy(value, layout, ...)` reproduce `raw`
    byte for byte when `raw` is machine-formatted (indent 4 or tab, ASCII-escaped or not, LF or
    CRLF, with or without a final newline); for a hand-formatted file only its line ending and final
    newline (its other spacing is not kept). Only what differs from the category's layout is listed."""
    quirks = line_layout(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return quirks
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    default: int | str = "\t" if layout == "tab" else 4
    for indent in (default, 4 if default == "\t" else "\t"):
        extra = {} if indent == default else {"indent": indent}
        if dumps_indented(value, indent) == text:
            return {**extra, **quirks}
        if text.isascii():
            continue
        if json.dumps(value, indent=indent, ensure_ascii=False) + "\n" == text:
            return {**extra, "ascii": False, **quirks}
    return quirks


def dumps_settings(value: Any) -> bytes:
    """The text repo's defaults.json / generation_params.json layout."""
    return dumps_indented(value, 2).encode("ascii")
