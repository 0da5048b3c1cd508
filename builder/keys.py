"""Model keys and the paths derived from them, in data/ and in the published site.

Keys unsafe as a path. The key is data; its file name is derived. A key that `key_problem` accepts
is its own path. Any other key (a URL such as `https://huggingface.co/org/model`, an empty segment,
`..`, a backslash, a control character, a reserved name), and any key starting with the marker
`_~` itself, is stored flat in the category folder as `_~` followed by the key's UTF-8 bytes with
every byte outside `A-Z a-z 0-9 . _ -` written `%XX` (upper-case hex), e.g.
`_~https%3A%2F%2Fhuggingface.co%2Forg%2Fmodel.yaml`. The encoding is reversible (`file_key`), a
plain key never yields a name starting with `_~`, and an encoded name has no `/`, so no key is
refused and none leaves its folder.

The published site derives its per-model paths (`builder.routes.model_file`, `model_page`) the same way,
so a key such as `../../x` or a URL is published under its encoded name, inside its category's folder.
Standard library only: the replica client and the route table use it without the builder.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ENCODED_PREFIX", "file_key", "folded_key", "key_problem", "key_stem"]


def key_problem(key: str) -> str | None:
    """Why a model key is unsafe as a path and an object key, or None."""
    if not key:
        return "empty key"
    if "\\" in key:
        return "key contains a backslash"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in key):
        return "key contains a control character"
    for seg in key.split("/"):
        if seg == "":
            return "key has an empty path segment"
        if seg in (".", ".."):
            return f"key has a {seg!r} path segment"
        if seg != seg.strip():
            return "key segment starts or ends with whitespace"
    if key.startswith("_category"):
        return "key is reserved"
    if not unicodedata.is_normalized("NFC", key):
        return "key is not in Unicode NFC form"
    return None


def folded_key(key: str) -> str:
    """What two keys that must not both exist share: the key case-folded and NFC-normalized
    (`Café` spelled precomposed or decomposed, `MODEL` and `model`)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", key).casefold())


#: the file-name prefix of an encoded key (see the module docstring)
ENCODED_PREFIX = "_~"
_PLAIN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def key_stem(key: str) -> str:
    """The path of a key's file below its category folder, without suffix (the key itself when safe)."""
    if key_problem(key) is None and not key.startswith(ENCODED_PREFIX):
        return key
    return ENCODED_PREFIX + "".join(chr(b) if b in _PLAIN_BYTES else f"%{b:02X}" for b in key.encode("utf-8"))


def file_key(stem: str) -> str | None:
    """The key a file stem stands for (the inverse of `key_stem`), or None if the stem is an
    encoded name that `key_stem` would not have written."""
    if not stem.startswith(ENCODED_PREFIX):
        return stem
    body, out, i = stem[len(ENCODED_PREFIX):], bytearray(), 0
    try:
        while i < len(body):
            if body[i] == "%":
                out.append(int(body[i + 1:i + 3], 16))
                i += 3
            else:
                out.append(ord(body[i]))
                i += 1
        key = out.decode("utf-8")
    except (ValueError, IndexError):
        return None
    return key if key_stem(key) == stem else None
