"""`hmr deploy`: publish a built site to object storage (or a directory) so that every moment is consistent.

Plan. The site's objects (every key of the route table, checked against the site's manifest) are
compared with what the target holds. The cheap path is one listing plus the live manifest: an
object whose listed size and ETag (the MD5 of a single-part upload) match, and whose entry in the
live manifest has the same sha256 and content type, is unchanged. Anything the listing cannot vouch
for (an ETag that is not a plain MD5, bytes left by an interrupted deploy, `--check-metadata`) is
settled by a HEAD: the sha256 kept in the object's metadata, its content type and cache-control.
A store that forgets metadata (rclone after a restart) therefore costs no needless re-upload: the
listing still proves the bytes.

Order. (1) the immutable snapshot `snapshots/<generation>/<key>` of every data key (`api/`,
`legacy/`) whose bytes are new in this generation (all of them on a first deploy), the manifest
included: long cache, immutable; (2) the changed mutable keys; (3) the manifest's signature, then the
manifest; (4) with `--prune`, deletion of the keys the new manifest no longer lists (never a live key,
never a snapshot). A phase starts only when every upload of the previous one succeeded, so a reader
who has the new manifest finds every byte it names (at the mutable key, or at
`snapshots/<generation>/<key>` while a CDN still serves an older copy), and a deploy that dies midway
leaves the old manifest live; the next run finds the finished uploads unchanged and completes the rest.

Generations only move forward: a site whose generation is older than the live one, or equal with
other content, is refused. A fresh CI checkout builds generation 1; `--pull-manifest` (`pull_manifest`)
first puts the live manifest into the site folder so that `hmr build` continues the count.

Stores with a filesystem underneath (MinIO, rclone serve s3, a local directory) cannot hold a key
that is also a folder of other keys (`v2/clip` and `v2/clip/model/...`). The deploy finds out from
the listing or, failing that, by a probe upload, and then publishes the outer object (what existing
clients read) and skips the keys under it, saying so in the summary. S3, R2 and B2 get every key.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from builder.errors import HmrError
from builder.publish.site import PHASE_MUTABLE, PHASE_SIGNATURE, SNAPSHOT_SCOPE, SNAPSHOTS, Obj, Site
from builder.publish.targets import Listed, Target
from builder.site.manifest import MANIFEST_FILE

_MD5 = re.compile(r"[0-9a-f]{32}")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Upload:
    obj: Obj
    reason: str  # new | changed | headers | metadata


@dataclass
class Plan:
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
        return sum(u.obj.size for u in self.uploads)

    def snapshot_uploads(self) -> int:
        return sum(u.obj.key.startswith(SNAPSHOTS) for u in self.uploads)

    def describe(self) -> list[str]:
        """The plan, one line per action, for --dry-run."""
        lines = [f"upload {u.obj.key} ({u.reason}, {u.obj.size} bytes)" for u in self.uploads]
        lines += [f"delete {k}" for k in self.deletions]
        return lines

    def summary(self) -> str:
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


@dataclass(frozen=True)
class Mismatch:
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


@dataclass
class DeployResult:
    plan: Plan
    uploaded: int
    uploaded_bytes: int
    deleted: int
    retries: int
    seconds: float
    dry_run: bool = False
    #: with a verify URL: how many keys were read back, and which differ
    verified: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def summary(self) -> str:
        p = self.plan
        s = (f"deployed generation {p.generation} to {p.target}: {self.uploaded} objects uploaded "
             f"({self.uploaded_bytes} bytes), {p.unchanged} unchanged, {self.deleted} deleted")
        if p.skipped:
            s += f", {len(p.skipped)} skipped (keys under another key: this store cannot hold both)"
        return s + f"; {self.retries} retries; {self.seconds:.1f} s"


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


def _run(jobs: list[Any], fn: Callable[[Any], Any], workers: int) -> list[Any]:
    """fn over jobs in a thread pool; the first failure cancels what has not started and is raised."""
    if not jobs:
        return []
    if workers <= 1 or len(jobs) == 1:
        return [fn(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures: list[Future[Any]] = [pool.submit(fn, j) for j in jobs]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and f.exception() is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise f.exception()  # type: ignore[misc]
        return [f.result() for f in futures]


def plan_deploy(site: Site, target: Target, *, prune: bool = False, dry_run: bool = False,
                check_metadata: bool = False, workers: int = 8) -> Plan:
    """What a deploy of `site` to `target` will do. Reads the target (and, outside a dry run, may
    probe whether it can nest keys); writes nothing else."""
    notes: list[str] = []
    listed = target.list(exclude=SNAPSHOTS)
    live_raw = target.get(MANIFEST_FILE) if MANIFEST_FILE in listed else None
    live = _parse_live(live_raw, notes)
    live_gen = live["generation"] if live is not None else None
    gen = site.generation
    hint = (f"fetch {MANIFEST_FILE} from the target into the site folder and run `hmr build` again, "
            "so that the build continues the live generation count")
    if live_gen is not None and gen < live_gen:
        raise HmrError(f"{target.url}: the live generation {live_gen} is newer than this site's {gen}; {hint}")
    if live is not None and gen == live_gen and live["files"] != site.manifest["files"]:
        raise HmrError(f"{target.url}: generation {gen} is live there with other content; {hint}")

    live_files: dict[str, Any] = live["files"] if live is not None else {}
    snapshot: list[Obj] = []
    if live_gen is None or gen > live_gen:
        # the new generation's immutable copy of every key whose bytes it changes (and the manifest)
        snapshot = [site.snapshot_of(o) for o in site.objects if o.key.startswith(SNAPSHOT_SCOPE) and (
            o.phase != PHASE_MUTABLE or (live_files.get(o.key) or {}).get("sha256") != o.sha256)]
        listed.update(target.list(under=f"{SNAPSHOTS}{gen}/"))
    desired = snapshot + site.objects

    shadowed = shadowed_keys(o.key for o in desired)
    nests = target.nests
    if shadowed and nests is None:
        nests = _infer_nesting(listed, live)
        if nests is None and not dry_run:
            nests = target.probe_nesting(_parent_listed(shadowed, listed))
    skipped = sorted(shadowed) if nests is False else []
    candidates = [o for o in desired if not (nests is False and o.key in shadowed)]

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

    for key, reason in _run(to_head, settle, workers):
        decided[key] = reason

    uploads = [Upload(o, decided[o.key]) for o in candidates if decided[o.key] is not None]  # type: ignore[arg-type]
    uploads.sort(key=lambda u: (u.obj.phase, u.obj.key))
    unchanged = len(candidates) - len(uploads)
    deletions: list[str] = []
    if prune:
        keep = {o.key for o in desired}
        deletions = sorted(k for k in listed if k not in keep and not k.startswith(SNAPSHOTS))
    nested_unknown = sum(u.obj.key in shadowed for u in uploads) if nests is None else 0
    return Plan(target.url, gen, live_gen, uploads, unchanged, skipped, deletions, nests, nested_unknown,
                len(to_head), notes)


def execute(plan: Plan, site: Site, target: Target, *, workers: int = 8,
            progress: Progress | None = None) -> tuple[int, int, int]:
    """Carry out `plan`, phase by phase; returns (objects uploaded, bytes uploaded, keys deleted)."""
    lock = threading.Lock()
    uploaded = [0, 0]

    def put(u: Upload) -> None:
        o = u.obj
        target.put(o.key, site.read(o), o.content_type, o.cache_control, o.sha256, o.md5)
        with lock:
            uploaded[0] += 1
            uploaded[1] += o.size
            if progress is not None:
                progress(1)

    for phase in sorted({u.obj.phase for u in plan.uploads}):
        batch = [u for u in plan.uploads if u.obj.phase == phase]
        # the signature and the manifest go one by one, in key order (`manifest`, then `manifest.json`)
        _run(batch, put, workers if phase <= PHASE_MUTABLE else 1)
    if plan.deletions:
        target.delete(plan.deletions)
    return uploaded[0], uploaded[1], len(plan.deletions)


def deploy(site: Site, target: Target, *, dry_run: bool = False, prune: bool = False,
           check_metadata: bool = False, verify_base: str | None = None, workers: int = 8,
           progress: Callable[[int], AbstractContextManager[Progress | None]] | None = None) -> DeployResult:
    """Plan, then (unless `dry_run`) upload and prune; then verify what `verify_base` (the CDN) serves.

    `progress(total uploads)` may give a context manager yielding a callback that counts uploads."""
    t0 = time.monotonic()
    target.open()
    plan = plan_deploy(site, target, prune=prune, dry_run=dry_run, check_metadata=check_metadata, workers=workers)
    result = DeployResult(plan, 0, 0, 0, 0, 0.0, dry_run=dry_run)
    if not dry_run:
        ctx = progress(len(plan.uploads)) if progress is not None and plan.uploads else nullcontext(None)
        with ctx as tick:
            result.uploaded, result.uploaded_bytes, result.deleted = execute(plan, site, target, workers=workers,
                                                                             progress=tick)
    result.retries = getattr(getattr(target, "retry", None), "retries", 0)
    result.seconds = time.monotonic() - t0
    if verify_base is not None:  # in a dry run too: what the CDN serves now, checked without changing it
        result.verified, result.mismatches = verify_url(site, verify_base, skip=plan.skipped, workers=workers)
    return result


def verify_url(site: Site, base_url: str, *, skip: Iterable[str] = (), workers: int = 8,
               timeout: float = 30.0) -> tuple[int, list[Mismatch]]:
    """GET every live key of `site` through `base_url` (the CDN in front of the target) and compare its
    sha256 with the manifest's. Returns (keys checked, mismatches). `skip`: keys the target could not hold."""
    import httpx

    skipped = set(skip)
    objs = [o for o in site.objects if o.key not in skipped]
    base = base_url.rstrip("/") + "/"
    # no-cache asks the CDN to revalidate with the origin rather than answer from its cache
    client = httpx.Client(timeout=timeout, follow_redirects=True, headers={"Cache-Control": "no-cache"},
                          limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers))

    def check(o: Obj) -> Mismatch | None:
        url = base + quote(o.key, safe="/")
        for attempt in (1, 2):
            try:
                r = client.get(url)
                break
            except httpx.HTTPError as e:
                if attempt == 2:
                    return Mismatch(o.key, f"request failed ({type(e).__name__})")
        if r.status_code != 200:
            return Mismatch(o.key, f"HTTP {r.status_code}")
        got = hashlib.sha256(r.content).hexdigest()
        if got != o.sha256:
            return Mismatch(o.key, f"sha256 {got} differs from the manifest's {o.sha256} ({len(r.content)} bytes)")
        return None

    try:
        found = _run(objs, check, workers)
    finally:
        client.close()
    return len(objs), sorted((m for m in found if m is not None), key=lambda m: m.key)


def pull_manifest(target: Target, site_dir: Path) -> int | None:
    """Download the target's live manifest into `site_dir`, so that the next `hmr build --out site_dir`
    continues the live generation count (a fresh CI checkout has no previous manifest). Returns the live
    generation, or None when the target has no manifest yet (the build then starts at 1)."""
    from builder.site.manifest import parse_previous

    target.open()
    raw = target.get(MANIFEST_FILE)
    if raw is None:
        return None
    try:
        doc = parse_previous(raw)
    except ValueError as e:
        raise HmrError(f"{target.url}{MANIFEST_FILE}: not a usable manifest ({e})") from None
    assert doc is not None
    dest = site_dir / MANIFEST_FILE
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".pull-tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, dest)
    except OSError as e:
        raise HmrError(f"{dest}: {e.strerror or e}") from None
    return int(doc["generation"])
