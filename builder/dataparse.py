"""Parsing one data file (YAML or JSON) into JSON values, within limits.

Every value a data file yields must be one the build can publish and JSON consumers can hold, so the
parser refuses, before any later stage runs: files over `MAX_FILE_BYTES`, nesting deeper than
`MAX_DEPTH`, integers beyond ±2^53, non-finite numbers, strings that are not valid UTF-8 (lone
surrogates), repeated keys, keys that are not strings, and in YAML any anchor or alias (a few
hundred bytes of nested aliases expand to gigabytes downstream), merge key or tag with no JSON value
(dates, binary, sets, python objects). Each refusal is a `ParseError` whose `pointer` is the JSON
pointer where it happened; a syntax error's message starts `unreadable:`.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from builder.errors import ParseError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_INT", "check_value", "json_pointer", "parse_file", "read_data"]


def json_pointer(parts: Iterable[object]) -> str:
    """The RFC 6901 JSON pointer of a path of keys and list indexes ("" for the whole document)."""
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "/" + "/".join(escaped) if escaped else ""



@functools.cache
def _yaml() -> tuple[Any, Any, Any]:
    """(yaml, loader, dumper), imported on first use: a warm build reads records from the cache only."""
    import yaml

    try:
        return yaml, yaml.CSafeLoader, yaml.CSafeDumper
    except AttributeError:  # PyYAML built without libyaml
        return yaml, yaml.SafeLoader, yaml.SafeDumper


#: limits on one data file: bigger, deeper or wider-numbered input is refused before any stage sees it
#: (the largest imported file is ~23 KB and ~6 levels deep; JSON consumers hold integers to 2^53)
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_INT = 1 << 53


class _Dup(dict):
    """A JSON object that repeated a key (the first repeated key is kept for the report)."""

    duplicate = ""


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out and not isinstance(out, _Dup):
            out = _Dup(out)
            out.duplicate = k
        out[k] = v
    return out


def _check_scalar(value: Any, where: list, what: str = "string") -> None:
    """Refuse a scalar that JSON consumers cannot hold as the build would publish it (`what`: how
    a string is named in the message; a key's pointer is its mapping's, a bad key cannot be printed)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise ParseError(f"integer {_short(str(value))} is beyond ±2^53 (JSON consumers lose it)",
                             pointer=json_pointer(where))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ParseError(f"number {value!r} is not finite (JSON has no {value!r})", pointer=json_pointer(where))
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(f"{what} holds a lone surrogate (not valid UTF-8)", pointer=json_pointer(where)) from None
    else:
        raise ParseError(f"a {type(value).__name__} is not a JSON value (quote it)", pointer=json_pointer(where))


def _check_tree(value: Any, where: list) -> None:
    """The checks JSON parsing cannot do with a pointer: depth, repeated keys, numbers, strings."""
    if isinstance(value, dict):
        if len(where) >= MAX_DEPTH:
            raise ParseError(f"nested deeper than {MAX_DEPTH} levels", pointer=json_pointer(where))
        if isinstance(value, _Dup):
            raise ParseError(f"duplicate key {_short(value.duplicate)}", pointer=json_pointer([*where, value.duplicate]))
        for k, v in value.items():
            _check_scalar(k, where, "mapping key")
            where.append(k)
            _check_tree(v, where)
            where.pop()
    elif isinstance(value, list):
        if len(where) >= MAX_DEPTH:
            raise ParseError(f"nested deeper than {MAX_DEPTH} levels", pointer=json_pointer(where))
        for i, v in enumerate(value):
            where.append(i)
            _check_tree(v, where)
            where.pop()
    else:
        _check_scalar(value, where)


def _short(text: str, limit: int = 60) -> str:
    r = repr(text) if not text.lstrip("-").isdigit() else text
    return r if len(r) <= limit else r[:limit] + "..."


def _load_json(text: str) -> Any:
    try:
        value = json.loads(text, object_pairs_hook=_json_pairs)
    except RecursionError:
        raise ParseError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, and integers of more digits than Python converts
        raise ParseError(f"unreadable: {_one_line(e)}") from None
    _check_tree(value, [])
    return value


#: the only tags a data file may carry (explicitly, or as what a plain scalar resolves to)
_YAML_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_YAML_MAP, _YAML_SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


def _load_yaml(text: str) -> Any:
    """YAML through libyaml's event stream, built here: anchors and aliases are refused before
    anything is constructed (an alias bomb of a few hundred bytes expands to gigabytes downstream),
    and so are repeated keys, keys that are not strings, tags JSON has no value for, and nesting past
    `MAX_DEPTH`; every refusal names the JSON pointer where it happened."""
    yaml, loader_cls, _ = _yaml()
    loader = loader_cls(text)
    # frames: [container, pointer parts of the container, pending mapping key (or _NO_KEY), keys node marks]
    stack: list[list] = []
    root: Any = None
    documents = 0
    try:
        while True:
            ev = loader.get_event()
            kind = type(ev)
            if kind is yaml.StreamEndEvent:
                break
            if kind in (yaml.StreamStartEvent, yaml.DocumentEndEvent):
                continue
            if kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise ParseError("more than one YAML document")
                continue
            if kind is yaml.AliasEvent or getattr(ev, "anchor", None) is not None:
                raise ParseError(f"YAML anchors and aliases are not allowed in data files (line {ev.start_mark.line + 1})",
                                 pointer=json_pointer(_here(stack)))
            if kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                value = stack.pop()[0]
                _attach(stack, value)
                if not stack:
                    root = value
                continue
            if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                is_map = kind is yaml.MappingStartEvent
                here = _here(stack)
                if stack and stack[-1][2] is _KEY_SLOT:
                    raise ParseError("a mapping key must be a string", pointer=json_pointer(here))
                tag = ev.tag if ev.tag not in (None, "!") else (_YAML_MAP if is_map else _YAML_SEQ)
                if tag != (_YAML_MAP if is_map else _YAML_SEQ):
                    raise ParseError(f"YAML tag {_short(tag)} is not allowed in data files", pointer=json_pointer(here))
                if len(here) >= MAX_DEPTH:
                    raise ParseError(f"nested deeper than {MAX_DEPTH} levels", pointer=json_pointer(here))
                stack.append([{} if is_map else [], here, _KEY_SLOT if is_map else None])
                continue
            # a scalar
            here = _here(stack)
            tag = ev.tag
            if tag is None or tag == "!":
                tag = loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
            if tag not in _YAML_SCALAR_TAGS:
                if tag.endswith(":timestamp"):
                    why = f"{_short(ev.value)} is a YAML date, not a JSON value (quote it)"
                elif tag.endswith(":merge"):
                    why = "YAML merge keys (<<) are not allowed in data files"
                else:
                    why = f"YAML tag {_short(tag)} is not allowed in data files"
                raise ParseError(why, pointer=json_pointer(here))
            try:
                value = loader.construct_object(yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style))
            except Exception:  # noqa: BLE001 - PyYAML raises anything from ValueError to IndexError here
                raise ParseError(f"{_short(ev.value)} is not a valid {tag.rsplit(':', 1)[-1]}",
                                 pointer=json_pointer(here)) from None
            if stack and stack[-1][2] is _KEY_SLOT:
                if not isinstance(value, str):
                    raise ParseError(f"mapping key {_short(ev.value)} is not a string (quote it)",
                                     pointer=json_pointer(here))
                if value in stack[-1][0]:
                    raise ParseError(f"duplicate key {_short(value)}", pointer=json_pointer([*stack[-1][1], value]))
                _check_scalar(value, stack[-1][1], "mapping key")
                stack[-1][2] = value
                continue
            _check_scalar(value, here)
            _attach(stack, value)
            if not stack:
                root = value
    except yaml.YAMLError as e:
        raise ParseError(f"unreadable: {_one_line(e)}") from None
    finally:
        loader.dispose()
    return root


class _KeySlot:
    """The marker of a mapping waiting for its next key."""


_KEY_SLOT = _KeySlot()


def _here(stack: list[list]) -> list:
    """The pointer parts of the value about to be read."""
    if not stack:
        return []
    container, parts, key = stack[-1]
    if isinstance(container, list):
        return [*parts, len(container)]
    return parts if key is _KEY_SLOT else [*parts, key]


def _attach(stack: list[list], value: Any) -> None:
    if not stack:
        return
    frame = stack[-1]
    if isinstance(frame[0], list):
        frame[0].append(value)
    else:
        frame[0][frame[2]] = value
        frame[2] = _KEY_SLOT


def read_data(path: Path) -> bytes:
    """The bytes of a data file: a regular file (not a link, FIFO or device), at most `MAX_FILE_BYTES`.

    Opened without following a link and without blocking, and checked on the open descriptor, so
    nothing else is read by mistake (a FIFO named *.yaml would hang a plain read forever).

    Raises:
        ParseError: not a regular file, or bigger than the limit.
        OSError: it cannot be read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ParseError("data files must not be symbolic links (not read)") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ParseError("not a regular file (not read)")
        if st.st_size > MAX_FILE_BYTES:
            raise ParseError(f"file is over the {MAX_FILE_BYTES >> 20} MiB limit of a data file")
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ParseError(f"file is over the {MAX_FILE_BYTES >> 20} MiB limit of a data file")
    return raw


def parse_file(path: Path, text: str) -> Any:
    """The content of a data file: JSON for `.json`, YAML otherwise, within the limits above.

    Raises:
        ParseError: the text is not well-formed, or breaks a limit; its `pointer` says where.
    """
    if path.suffix == ".json":
        return _load_json(text)
    return _load_yaml(text)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def check_value(value: Any, where: Iterable[object] = ()) -> None:
    """The limits of a parsed data file (depth, numbers, strings, keys) applied to a value read some
    other way, such as a record of a legacy file; `where` is the pointer's prefix.

    Raises:
        ParseError: a limit is broken; its `pointer` says where.
    """
    _check_tree(value, list(where))
