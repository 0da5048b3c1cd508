"""A small on-disk memo for derived site objects that are slow to recompute and depend on a few inputs.

Like the record cache (`builder.cache`), it only saves time: an entry is keyed by a digest of its
inputs and of the source of the code that makes it, so an edited input or an edited module simply
misses. One entry per name is kept (the latest), so the memo never grows with history.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from builder.cache import cache_dir, digest


@cache
def code_digest(*modules: str) -> str:
    """A digest of the source files of `modules` (imported names), part of every memo key."""
    import importlib

    parts = []
    for m in modules:
        f = getattr(importlib.import_module(m), "__file__", None)
        parts.append(Path(f).read_bytes() if f else m.encode())
    return digest(b"\0".join(parts))


def memoized(name: str, inputs: Iterable[bytes], make: Callable[[], bytes], modules: tuple[str, ...] = ()) -> bytes:
    """`make()`, or the bytes it gave last time for the same inputs and code."""
    root = cache_dir()
    if root is None:
        return make()
    key = digest(b"\0".join([code_digest(*modules).encode(), *(digest(i).encode() for i in inputs)]))
    path = root / "derived" / f"{name}.bin"
    head = key.encode() + b"\n"
    try:
        with open(path, "rb") as f:
            if f.read(len(head)) == head:
                return f.read()
    except OSError:
        pass
    value = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(head + value)
        os.replace(tmp, path)
    except OSError:
        pass  # a memo that cannot be written only costs time
    return value


def pack(files: dict[str, bytes]) -> bytes:
    """Many files as one blob: a JSON header line of [path, length] pairs, then the contents."""
    import orjson

    return orjson.dumps([[k, len(v)] for k, v in files.items()]) + b"\n" + b"".join(files.values())


def unpack(blob: bytes) -> dict[str, bytes]:
    import orjson

    cut = blob.index(b"\n")
    out: dict[str, bytes] = {}
    at = cut + 1
    view = memoryview(blob)
    for path, length in orjson.loads(blob[:cut]):
        out[path] = bytes(view[at: at + length])
        at += length
    if at != len(blob):
        raise ValueError("packed files do not add up")
    return out


def memoized_files(name: str, inputs: Iterable[bytes], make: Callable[[], dict[str, bytes]],
                   modules: tuple[str, ...] = ()) -> dict[str, bytes]:
    """`memoized` for a dict of files (path -> bytes)."""
    made: list[dict[str, bytes]] = []

    def build() -> bytes:
        made.append(make())
        return pack(made[0])

    blob = memoized(name, inputs, build, modules)
    if made:
        return made[0]
    try:
        return unpack(blob)
    except (ValueError, TypeError):
        return make()  # a damaged memo only costs time
