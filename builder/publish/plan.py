"""The plan of a deploy: which objects to upload, in which order, and which keys to delete.

The site's objects (every key of the route table, checked against the site's manifest) are
compared with what the target holds. The cheap path is one listing plus the live manifest: an
object whose listed size and ETag (the MD5 of a single-part upload) match, and whose entry in the
live manifest has the same sha256 and content type, is unchanged. Anything the listing cannot vouch
for (an ETag that is not a plain MD5, bytes left by an interrupted deploy, `check_metadata`) is
settled by a HEAD: the sha256 kept in the object's metadata, its content type and cache-control.
A store that forgets metadata (rclone after a restart) therefore costs no needless re-upload: the
listing still proves the bytes.

Generations only move forward: a site whose generation is older than the live one, or equal with
other content, is refused (`PublishError`, key: the manifest).

Stores with a filesystem underneath (MinIO, rclone serve s3, a local directory) cannot hold a key
that is also a folder of other keys (`v2/clip` and `v2/clip/model/...`). The plan finds out from
the listing or, failing that, by a probe upload, and then keeps the outer object (what existing
clients read) and skips the keys under it, saying so in the summary. S3, R2 and B2 get every key. A
local directory (served by a web server with the generated rewrite `x` -> `x.json`) instead leaves
out the outer key where its `.json` twin exists, so it holds every per-model and metadata key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from builder.errors import PublishError
from builder.publish.pool import run_parallel
from builder.publish.site import PHASE_MUTABLE, PHASE_SIGNATURE, SNAPSHOT_SCOPE, Obj, Site
from builder.publish.store import Listed, Target
from builder.routes import MANIFEST_FILE, SNAPSHOTS, snapshot_key

__all__ = ["Plan", "Upload", "plan_deploy", "shadowed_keys"]

_MD5 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Upload:
    """One object the deploy writes, and why: new, changed (other bytes), headers or metadata (same bytes)."""

    obj: Obj
    reason: str  # new | changed | headers | metadata


@dataclass
class Plan:
    """What a deploy will do to a target (`plan_deploy`): uploads in order, then deletions."""

    target: str
    generation: int
    live_generation: int | None
    #: in upload order: snapshot, mutable keys, signature, manifest
    uploads: list[Upload]
    unchanged: int
    #: keys under another key, on a store that cannot hold both
    skipped: list[str]
    #: with --prune: keys the target holds that the new manifest does not list (never a snapshot)
    deletions: list[str]
    #: whether the store holds keys under other keys (None: not known in a dry run)
    nests: bool | None
    #: dry run on a store of unknown kind: planned uploads that lie under another key
    nested_unknown: int = 0
    heads: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def upload_bytes(self) -> int:
        """Bytes the uploads send."""
        return sum(u.obj.size for u in self.uploads)

    def snapshot_uploads(self) -> int:
        """How many of the uploads are snapshot keys."""
        return sum(u.obj.key.startswith(SNAPSHOTS) for u in self.uploads)

    def describe(self) -> list[str]:
        """The plan, one line per action, for --dry-run."""
        lines = [f"upload {u.obj.key} ({u.reason}, {u.obj.size} bytes)" for u in self.uploads]
        lines += [f"delete {k}" for k in self.deletions]
        return lines

    def summary(self) -> str:
        """The plan in one line, for --dry-run."""
        live = "none" if self.live_generation is None else str(self.live_generation)
        s = (f"plan for {self.target}: generation {self.generation} (live: {live}): {len(self.uploads)} uploads "
             f"({self.upload_bytes} bytes; {self.snapshot_uploads()} of them snapshot keys), {self.unchanged} "
             f"unchanged, {len(self.deletions)} deletions")
        if self.skipped:
            s += f", {len(self.skipped)} skipped (keys under another key: this store cannot hold both)"
        if self.nested_unknown:
            s += (f"; {self.nested_unknown} of the uploads lie under another key (a store with a filesystem "
                  "underneath, such as MinIO or rclone, will skip them)")
        return s


def shadowed_keys(keys: Iterable[str]) -> set[str]:
    """Keys that lie under another key of `keys` (`a/b/c` when `a/b` is a key too)."""
    ks = set(keys)
    out: set[str] = set()
    for k in ks:
        i = k.find("/")
        while i != -1:
            if k[:i] in ks:
                out.add(k)
                break
            i = k.find("/", i + 1)
    return out


def _parse_live(raw: bytes | None, notes: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
        if isinstance(doc, dict) and isinstance(doc.get("files"), dict) and isinstance(doc.get("generation"), int):
            return doc
    except orjson.JSONDecodeError:
        pass
    # Not fatal: the deploy replaces it. But it cannot vouch for anything, so every object is HEADed.
    notes.append("the live manifest is unreadable; comparing every object by HEAD")
    return None


def _infer_nesting(listed: dict[str, Listed], live: dict[str, Any] | None) -> bool | None:
    """What the listing proves about nesting: True when a listed key lies under another listed one;
    False when the live manifest names keys under a listed key and none of them is there (the deploy
    that made it live had to skip them); None when the listing cannot tell."""
    if shadowed_keys(listed):
        return True
    if live is not None:
        nested_live = shadowed_keys(live["files"])
        for k in nested_live:
            i = k.find("/")
            while i != -1:
                if k[:i] in listed:
                    return False
                i = k.find("/", i + 1)
    return None


def _parent_listed(shadowed: set[str], listed: dict[str, Listed]) -> str | None:
    for k in sorted(shadowed):
        i = k.find("/")
        while i != -1:
            if k[:i] in listed:
                return k[:i]
            i = k.find("/", i + 1)
    return None


def plan_deploy(site: Site, target: Target, *, prune: bool = False, dry_run: bool = False,
                check_metadata: bool = False, workers: int = 8) -> Plan:
    """What a deploy of `site` to `target` will do. Reads the target (and, outside a dry run, may
    probe whether it can nest keys); writes nothing else.

    Raises:
        PublishError: the target's live generation is newer, or the same with other content; or the
            target failed (its key, when one request did).
    """
    notes: list[str] = []
    listed = target.list(exclude=SNAPSHOTS)
    live_raw = target.get(MANIFEST_FILE) if MANIFEST_FILE in listed else None
    live = _parse_live(live_raw, notes)
    live_gen = live["generation"] if live is not None else None
    gen = site.generation
    hint = (f"fetch {MANIFEST_FILE} from the target into the site folder and run `hmr build` again, "
            "so that the build continues the live generation count")
    if live_gen is not None and gen < live_gen:
        raise PublishError(f"{target.url}: the live generation {live_gen} is newer than this site's {gen}; {hint}",
                           key=MANIFEST_FILE)
    if live is not None and gen == live_gen and live["files"] != site.manifest["files"]:
        raise PublishError(f"{target.url}: generation {gen} is live there with other content; {hint}",
                           key=MANIFEST_FILE)

    live_files: dict[str, Any] = live["files"] if live is not None else {}
    snapshot: list[Obj] = []
    if live_gen is None or gen > live_gen:
        # the new generation's immutable copy of every key whose bytes it changes (and the manifest)
        snapshot = [site.snapshot_of(o) for o in site.objects if o.key.startswith(SNAPSHOT_SCOPE) and (
            o.phase != PHASE_MUTABLE or (live_files.get(o.key) or {}).get("sha256") != o.sha256)]
        listed.update(target.list(under=snapshot_key(gen, "")))
    desired = snapshot + site.objects

    shadowed = shadowed_keys(o.key for o in desired)
    nests = target.nests
    if shadowed and nests is None:
        nests = _infer_nesting(listed, live)
        if nests is None and not dry_run:
            nests = target.probe_nesting(_parent_listed(shadowed, listed))
    left_out = shadowed if nests is False else set()
    if nests is False and shadowed and getattr(target, "serves_json_twins", False):
        # a directory behind a web server: leave out the outer key instead where its `.json` twin is
        # published (the web server's rewrite answers `x` with `x.json`), so every key under it stays
        keys = {o.key for o in desired}
        folders = {k[:i] for k in shadowed for i in range(len(k)) if k[i] == "/" and k[:i] in keys}
        twinned = {f for f in folders if f + ".json" in keys}
        left_out = twinned | shadowed_keys(keys - twinned)
    skipped = sorted(left_out)
    candidates = [o for o in desired if o.key not in left_out]

    same_manifest = live_raw is not None and hashlib.sha256(live_raw).hexdigest() == site.manifest_sha256

    def vouched(o: Obj) -> bool:
        if o.key.startswith(SNAPSHOTS) or o.phase == PHASE_SIGNATURE:
            return False
        if o.phase != PHASE_MUTABLE:
            return same_manifest
        return live_files.get(o.key) == {"sha256": o.sha256, "bytes": o.size, "content_type": o.content_type}

    decided: dict[str, str | None] = {}
    to_head: list[Obj] = []
    for o in candidates:
        seen = listed.get(o.key)
        if seen is None:
            decided[o.key] = "new"
        elif seen.size != o.size:
            decided[o.key] = "changed"
        elif seen.sha256 is not None:  # a directory: the listing hashed the file
            decided[o.key] = None if seen.sha256 == o.sha256 else "changed"
        elif seen.etag == o.md5 and vouched(o) and not check_metadata:
            decided[o.key] = None
        elif seen.etag != o.md5 and _MD5.fullmatch(seen.etag or "") and not vouched(o) and not check_metadata:
            # a plain MD5 ETag that differs: other bytes (a KMS ETag only matters for keys expected unchanged)
            decided[o.key] = "changed"
        else:
            to_head.append(o)

    def settle(o: Obj) -> tuple[str, str | None]:
        h = target.head(o.key)
        if h is None:
            return o.key, "new"
        etag = listed[o.key].etag
        if not (etag == o.md5 or (h.sha256 == o.sha256 and h.size == o.size)):
            return o.key, "changed"
        if check_metadata and etag != o.md5 and _MD5.fullmatch(etag or ""):
            # the thorough mode believes a plain MD5 ETag over the metadata: bytes damaged at rest keep
            # their metadata (on a KMS-encrypted bucket this re-uploads everything, which is the price)
            return o.key, "changed"
        if h.content_type != o.content_type or h.cache_control != o.cache_control:
            return o.key, "headers"
        if check_metadata and (h.sha256 or "").lower() != o.sha256:
            return o.key, "metadata"
        return o.key, None

    for key, reason in run_parallel(to_head, settle, workers):
        decided[key] = reason

    uploads = [Upload(o, reason) for o in candidates if (reason := decided[o.key]) is not None]
    uploads.sort(key=lambda u: (u.obj.phase, u.obj.key))
    unchanged = len(candidates) - len(uploads)
    deletions: list[str] = []
    if prune:
        keep = {o.key for o in desired}
        deletions = sorted(k for k in listed if k not in keep and not k.startswith(SNAPSHOTS))
    nested_unknown = sum(u.obj.key in shadowed for u in uploads) if nests is None else 0
    return Plan(target.url, gen, live_gen, uploads, unchanged, skipped, deletions, nests, nested_unknown,
                len(to_head), notes)
