"""The shape a legacy JSON record must have before it is converted.

Upstream's files were written by hand and by scripts, and the converter keeps everything it does not
understand in the record's `legacy:` block. What it must understand is typed here: the record is an
object, its `config` an object of `files` and `download` lists of objects whose file names, paths,
URLs and hashes are strings. Every value must also be one the build can publish (the limits of
`builder.dataparse`: depth, ±2^53 integers, finite numbers, valid UTF-8), so that nothing imports that
the build would then refuse. A record that breaks either is one `FILE:POINTER: message` line naming
the record and the field.
"""

from __future__ import annotations

from typing import Any

from builder.dataparse import check_value, json_pointer
from builder.errors import LegacyFormatError, ParseError

__all__ = ["check_legacy_record"]

#: config list -> the fields of each entry that the converter reads as text (None allowed)
_ENTRY_TEXT = {
    "files": ("path", "sha256sum", "md5sum", "content_hash", "file_type"),
    "download": ("file_name", "file_path", "file_url", "sha256sum", "file_purpose", "content_hash"),
}
_RECORD_TEXT = ("name", "baseline", "type", "style", "description")


def _kind(value: Any) -> str:
    return "null" if value is None else {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
                                         int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _wrong(key: str, path: list, expected: str, value: Any) -> LegacyFormatError:
    return LegacyFormatError(f"{key}: {json_pointer(path[1:])}: expected {expected}, got {_kind(value)}",
                             pointer=json_pointer(path))


def check_legacy_record(key: str, record: Any) -> None:
    """Refuse a legacy record whose converted fields have the wrong type, or whose values the build
    could not publish.

    Raises:
        LegacyFormatError: the record names the record and the field.
    """
    if not isinstance(record, dict):
        raise LegacyFormatError(f"{key}: record is not an object", pointer=json_pointer([key]))
    try:
        check_value(record, [key])
    except ParseError as e:
        raise LegacyFormatError(f"{key}: {e.pointer[len(json_pointer([key])):] or '/'}: {e.message}",
                                pointer=e.pointer) from None
    for f in _RECORD_TEXT:
        if f in record and record[f] is not None and not isinstance(record[f], str):
            raise _wrong(key, [key, f], "a string", record[f])
    if "config" not in record:
        return
    config = record["config"]
    if not isinstance(config, dict):
        raise _wrong(key, [key, "config"], "an object", config)
    for name, fields in _ENTRY_TEXT.items():
        entries = config.get(name)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise _wrong(key, [key, "config", name], "a list", entries)
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise _wrong(key, [key, "config", name, i], "an object", entry)
            for f in fields:
                if entry.get(f) is not None and not isinstance(entry[f], str):
                    raise _wrong(key, [key, "config", name, i, f], "a string", entry[f])
