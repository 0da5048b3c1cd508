"""What a built site publishes: every key of the route table, checked against the site's manifest.

A deploy never uploads bytes the manifest does not vouch for: each key's file is hashed here and
compared with its manifest entry (sha256, size, content type), so a half-written or hand-edited
site fails before anything leaves the machine. File contents are not kept in memory (a large site
would not fit); `read()` re-reads a file at upload time and checks it is still what was planned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from builder.errors import PublishError
from builder.fs import walk_files
from builder.routes import (
    API,
    LEGACY_DIR,
    MANIFEST_FILE,
    PRIVATE_PREFIX,
    SIGNATURE_FILE,
    Route,
    cache_control,
    routes,
    snapshot_key,
)

__all__ = ["PHASE_MANIFEST", "PHASE_MUTABLE", "PHASE_SIGNATURE", "PHASE_SNAPSHOT", "SNAPSHOT_SCOPE", "Obj", "Site",
           "load_site"]

#: what a generation's snapshot covers: the data that programs read and check against the manifest
#: (the API and the legacy files), not the HTML pages and their assets, which browsers read as they are
SNAPSHOT_SCOPE = (f"{API}/", f"{LEGACY_DIR}/")

#: upload phases, in order: a later phase starts only when every upload of the earlier ones succeeded
PHASE_SNAPSHOT, PHASE_MUTABLE, PHASE_SIGNATURE, PHASE_MANIFEST = range(4)


@dataclass(frozen=True)
class Obj:
    """One object to publish: its key under the target's root, the site file holding its bytes, and
    the headers the route table gives it."""

    key: str
    file: str
    content_type: str
    cache_control: str
    sha256: str
    md5: str
    size: int
    phase: int


@dataclass
class Site:
    """A built site checked against its manifest: what a deploy publishes from `root`."""

    root: Path
    generation: int
    manifest: dict[str, Any]
    manifest_sha256: str
    #: every live key of the route table (snapshots not included), in route-table order
    objects: list[Obj]

    def read(self, obj: Obj) -> bytes:
        """The bytes of `obj`, checked against what was hashed when the site was loaded.

        Raises:
            PublishError: the file is gone or changed since (`key`: the object's).
        """
        try:
            data = (self.root / obj.file).read_bytes()
        except OSError as e:
            raise PublishError(f"{self.root / obj.file}: {e.strerror or e} (was the site rebuilt during the deploy?)",
                               key=obj.key) from None
        if len(data) != obj.size or hashlib.sha256(data).hexdigest() != obj.sha256:
            raise PublishError(f"{self.root / obj.file} changed during the deploy (rebuilt?); run the deploy again",
                               key=obj.key)
        return data

    def snapshot_of(self, obj: Obj) -> Obj:
        """`obj` under `snapshots/<generation>/`: same bytes and content type, the immutable cache policy."""
        key = snapshot_key(self.generation, obj.key)
        return Obj(key, obj.file, obj.content_type, cache_control(key), obj.sha256, obj.md5, obj.size,
                   PHASE_SNAPSHOT)


def _site_files(root: Path) -> list[str]:
    return [f for f in walk_files(root) if not f.startswith(PRIVATE_PREFIX)]


def _phase(route: Route) -> int:
    if route.file == MANIFEST_FILE:
        return PHASE_MANIFEST
    if route.file == SIGNATURE_FILE:
        return PHASE_SIGNATURE
    return PHASE_MUTABLE


def load_site(root: Path) -> Site:
    """The objects of the site built in `root`, every one checked against the site's manifest.

    Raises:
        PublishError: the manifest is missing or unreadable, or the tree does not match it (`key`:
            the first key found wrong, or the manifest's).
    """
    manifest_path = root / MANIFEST_FILE
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise PublishError(f"{root}: no {MANIFEST_FILE} (not a built site? run `hmr build` first)",
                           key=MANIFEST_FILE) from None
    except OSError as e:
        raise PublishError(f"{manifest_path}: {e.strerror or e}", key=MANIFEST_FILE) from None
    try:
        manifest = orjson.loads(raw)
        entries = manifest["files"]
        generation = manifest["generation"]
        if not isinstance(entries, dict) or not isinstance(generation, int) or generation < 1:
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise PublishError(f"{manifest_path}: not a valid manifest", key=MANIFEST_FILE) from None

    digests: dict[str, tuple[str, str, int]] = {}
    objects: list[Obj] = []
    for r in routes(_site_files(root)):
        if r.file not in digests:
            try:
                data = (root / r.file).read_bytes()
            except OSError as e:
                raise PublishError(f"{root / r.file}: {e.strerror or e}", key=r.key) from None
            # md5 only to compare with S3 ETags (the MD5 of a single-part upload), not for integrity
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            digests[r.file] = (hashlib.sha256(data).hexdigest(), md5, len(data))
        sha, md5, size = digests[r.file]
        phase = _phase(r)
        if phase == PHASE_MUTABLE:
            entry = entries.get(r.key)
            if entry is None:
                raise PublishError(f"{root}: {r.key} is not in the manifest (stray file {r.file}? rebuild the site)",
                                   key=r.key)
            if (entry.get("sha256"), entry.get("bytes"), entry.get("content_type")) != (sha, size, r.content_type):
                raise PublishError(f"{root}: {r.key} does not match the manifest (rebuild the site)", key=r.key)
        objects.append(Obj(r.key, r.file, r.content_type, r.cache_control, sha, md5, size, phase))
    missing = set(entries) - {o.key for o in objects}
    if missing:
        raise PublishError(f"{root}: {len(missing)} manifest key(s) have no file, e.g. {min(missing)} "
                           "(rebuild the site)", key=min(missing))
    return Site(root, generation, manifest, hashlib.sha256(raw).hexdigest(), objects)
