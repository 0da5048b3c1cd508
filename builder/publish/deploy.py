"""`hmr deploy`: publish a built site to object storage (or a directory) so that every moment is consistent.

The API: `deploy(site_dir, to, ...)` loads the site built in `site_dir`, opens the target URL `to`
and deploys (`deploy_site` does the same with a loaded site and an opened target);
`pull_manifest(site_dir, to)` fetches the live manifest for the next build. The plan itself (what
is unchanged, what is uploaded, what a store that cannot nest keys skips) is `builder.publish.plan`.

Order. (1) the immutable snapshot `snapshots/<generation>/<key>` of every data key (`api/`,
`legacy/`) whose bytes are new in this generation (all of them on a first deploy), the manifest
included: long cache, immutable; (2) the changed mutable keys; (3) the manifest's signature, then the
manifest; (4) with `prune`, deletion of the keys the new manifest no longer lists (never a live key,
never a snapshot). A phase starts only when every upload of the previous one succeeded, so a reader
who has the new manifest finds every byte it names (at the mutable key, or at
`snapshots/<generation>/<key>` while a CDN still serves an older copy), and a deploy that dies midway
leaves the old manifest live; the next run finds the finished uploads unchanged and completes the rest.

A fresh CI checkout builds generation 1; `pull_manifest` (`hmr deploy --pull-manifest`) first puts the
live manifest into the site folder so that `hmr build` continues the count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import PublishError
from builder.fs import atomic_write
from builder.publish.plan import Plan, Upload, plan_deploy
from builder.publish.pool import run_parallel
from builder.publish.site import PHASE_MUTABLE, Site, load_site
from builder.publish.store import RetryPolicy, Target
from builder.publish.targets import open_target
from builder.publish.verify import Mismatch, verify_url
from builder.routes import MANIFEST_FILE

__all__ = ["DeployResult", "Pulled", "deploy", "deploy_site", "execute", "pull_live_manifest", "pull_manifest"]

#: counts finished uploads
Progress = Callable[[int], None]
#: given the number of uploads, a context manager yielding a `Progress` (or None for no progress)
ProgressFactory = Callable[[int], AbstractContextManager[Progress | None]]


@dataclass
class DeployResult:
    """What a deploy did (or, in a dry run, would do) and, with a verify URL, what the CDN serves."""

    plan: Plan
    uploaded: int
    uploaded_bytes: int
    deleted: int
    retries: int
    seconds: float
    dry_run: bool = False
    #: with a verify URL: the URL, how many keys were read back through it, and which differ
    verify_base: str | None = None
    verified: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    #: the bucket's CORS rule: "set", "unchanged", "would set", "unsupported (...)"; None: no bucket
    cors: str | None = None

    def summary(self) -> str:
        """The deploy in one line: uploads, unchanged, deletions, skipped keys, retries, time."""
        p = self.plan
        s = (f"deployed generation {p.generation} to {p.target}: {self.uploaded} objects uploaded "
             f"({self.uploaded_bytes} bytes), {p.unchanged} unchanged, {self.deleted} deleted")
        if p.skipped:
            s += f", {len(p.skipped)} skipped (keys under another key: this store cannot hold both)"
        if self.cors is not None:
            s += f"; bucket CORS {self.cors}"
        return s + f"; {self.retries} retries; {self.seconds:.1f} s"

    def raise_for_mismatches(self) -> None:
        """Raise if the verify URL served any key other than the manifest says.

        Raises:
            PublishError: one or more keys differ (`key`: the first of them).
        """
        if self.mismatches:
            raise PublishError(f"{len(self.mismatches)} of {self.verified} keys differ from the manifest at "
                               f"{self.verify_base}", key=self.mismatches[0].key)


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
        run_parallel(batch, put, workers if phase <= PHASE_MUTABLE else 1)
    if plan.deletions:
        target.delete(plan.deletions)
    return uploaded[0], uploaded[1], len(plan.deletions)


def deploy_site(site: Site, target: Target, *, dry_run: bool = False, prune: bool = False,
                check_metadata: bool = False, verify_base: str | None = None, workers: int = 8,
                progress: ProgressFactory | None = None) -> DeployResult:
    """Plan, then (unless `dry_run`) upload and prune; then verify what `verify_base` (the CDN) serves.
    `target` is opened here and left open.

    Raises:
        PublishError: the plan refused the site, or the target failed; mismatches found through
            `verify_base` are not raised here (see `DeployResult.raise_for_mismatches`).
    """
    t0 = time.monotonic()
    target.open()
    plan = plan_deploy(site, target, prune=prune, dry_run=dry_run, check_metadata=check_metadata, workers=workers)
    result = DeployResult(plan, 0, 0, 0, 0, 0.0, dry_run=dry_run, verify_base=verify_base)
    if not dry_run:
        ctx = progress(len(plan.uploads)) if progress is not None and plan.uploads else nullcontext(None)
        with ctx as tick:
            result.uploaded, result.uploaded_bytes, result.deleted = execute(plan, site, target, workers=workers,
                                                                             progress=tick)
    result.retries = getattr(getattr(target, "retry", None), "retries", 0)
    ensure_cors = getattr(target, "ensure_cors", None)
    if ensure_cors is not None:
        # browsers read the site cross-origin (as from GitHub raw): the bucket answers with CORS itself.
        # After the objects (its retries are not the upload's), and a failure here only warns
        result.cors = ensure_cors(dry_run)
        if result.cors not in ("set", "unchanged", "would set"):
            plan.notes.append(f"{plan.target}: bucket CORS {result.cors}: browsers on other origins need "
                              "Access-Control-Allow-Origin from the CDN or web server in front of it (docs: cors)")
    result.seconds = time.monotonic() - t0
    if verify_base is not None:  # in a dry run too: what the CDN serves now, checked without changing it
        result.verified, result.mismatches = verify_url(site, verify_base, skip=plan.skipped, workers=workers)
    return result


def deploy(site_dir: Path, to: str, *, endpoint_url: str | None = None, dry_run: bool = False,
           prune: bool = False, check_metadata: bool = False, verify_base: str | None = None, workers: int = 8,
           progress: ProgressFactory | None = None, retry: RetryPolicy | None = None) -> DeployResult:
    """Deploy the site built in `site_dir` to the target URL `to` (`s3://BUCKET/PREFIX`, `file:///PATH`).

    `endpoint_url`: the S3 endpoint of a store other than AWS. `progress(total uploads)` may give a
    context manager yielding a callback that counts uploads. The rest as `deploy_site`.

    Raises:
        PublishError: the site does not match its manifest, the plan refused it, or the target failed.
        ConfigError: `to` names no usable target, or the credentials are unusable.
    """
    site = load_site(site_dir)
    target = open_target(to, endpoint_url, retry, workers)
    try:
        return deploy_site(site, target, dry_run=dry_run, prune=prune, check_metadata=check_metadata,
                           verify_base=verify_base, workers=workers, progress=progress)
    finally:
        target.close()


@dataclass(frozen=True)
class Pulled:
    """What `pull_manifest` found: the target (as printed) and its live generation (None: no manifest)."""

    target: str
    generation: int | None


def pull_live_manifest(target: Target, site_dir: Path) -> int | None:
    """Download `target`'s live manifest into `site_dir`, so that the next `hmr build --out site_dir`
    continues the live generation count (a fresh CI checkout has no previous manifest). Returns the live
    generation, or None when the target has no manifest yet (the build then starts at 1).

    Raises:
        PublishError: the live manifest is not usable, or it cannot be written into `site_dir`.
    """
    from builder.site.manifest import parse_previous

    target.open()
    raw = target.get(MANIFEST_FILE)
    if raw is None:
        return None
    try:
        doc = parse_previous(raw)
    except ValueError as e:
        raise PublishError(f"{target.url}{MANIFEST_FILE}: not a usable manifest ({e})", key=MANIFEST_FILE) from None
    assert doc is not None
    dest = site_dir / MANIFEST_FILE
    try:
        atomic_write(dest, raw)
    except OSError as e:
        raise PublishError(f"{dest}: {e.strerror or e}", key=MANIFEST_FILE) from None
    return int(doc["generation"])


def pull_manifest(site_dir: Path, to: str, *, endpoint_url: str | None = None, workers: int = 8) -> Pulled:
    """`pull_live_manifest` from the target URL `to` (see `deploy` for the URL and `endpoint_url`).

    Raises:
        PublishError: the target failed, or its manifest is not usable.
        ConfigError: `to` names no usable target, or the credentials are unusable.
    """
    target = open_target(to, endpoint_url, None, workers)
    try:
        return Pulled(target.url, pull_live_manifest(target, site_dir))
    finally:
        target.close()
