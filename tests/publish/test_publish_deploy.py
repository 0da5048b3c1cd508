"""`hmr deploy` against a real S3-compatible server (`rclone serve s3` on 127.0.0.1) and a local directory.

rclone stores objects as files, so (like MinIO) it cannot hold `v2/clip` and `v2/clip/model/...` at
once: the deploy publishes the outer keys and reports the inner ones as skipped. The tests check both
halves: every key the store can hold is there, right, and the rest is counted.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from builder.errors import ConfigError, PublishError
from builder.publish.deploy import deploy, deploy_site
from builder.publish.plan import plan_deploy, shadowed_keys
from builder.publish.site import PHASE_MUTABLE, PHASE_SNAPSHOT, SNAPSHOT_SCOPE, Site, load_site
from builder.publish.store import RetryPolicy, Target
from builder.publish.targets import open_target
from builder.routes import MANIFEST_FILE, MUTABLE_CACHE, SNAPSHOTS, snapshot_key, v2_file, v2_key
from tests.helpers import HMR, run_hmr
from tests.publish_support import Ran, Rclone, S3Proxy, aws_env, hmr_in_process, list_bucket

MANIFEST_KEYS = {MANIFEST_FILE, MANIFEST_FILE[: -len(".json")]}


def hmr_deploy(site: Path, to: str, *extra: str, endpoint: str | None = None,
               env: dict[str, str] | None = None) -> Ran:
    args = ["deploy", "--site", str(site), "--to", to, *extra]
    if endpoint:
        args += ["--endpoint-url", endpoint]
    return hmr_in_process(*args, env=env or aws_env())


def uploaded(r: Ran) -> int:
    m = re.search(r"deployed generation \d+ to \S+: (\d+) objects uploaded", r.stdout)
    assert m, f"no summary line in {r.stdout!r} / {r.stderr!r}"
    return int(m[1])


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process deploys read the same credential chain as the `hmr deploy` runs (undone after)."""
    for k, v in aws_env().items():
        monkeypatch.setenv(k, v)


def s3_target(endpoint: str, bucket: str, prefix: str, retry: RetryPolicy | None = None) -> Target:
    return open_target(f"s3://{bucket}/{prefix}", endpoint, retry)


def expected_keys(site: Site, json_twins: bool = False) -> tuple[set[str], set[str]]:
    """(keys a store that cannot nest holds after deploying `site` first, keys it skips); `json_twins`:
    a directory, which leaves out an outer key with a `.json` twin rather than the keys under it."""
    live = {o.key for o in site.objects}
    snap = {snapshot_key(site.generation, k) for k in live if k.startswith(SNAPSHOT_SCOPE)}
    everything = live | snap
    inner = shadowed_keys(everything)
    if json_twins:
        outer = {k for k in everything if k + ".json" in everything and any(i.startswith(k + "/") for i in inner)}
        inner = outer | shadowed_keys(everything - outer)
    return everything - inner, inner


# ---------------------------------------------------------------------------------------------------


def test_one_model_changed_uploads_only_its_keys_in_order_and_prunes_after_the_manifest(
        rclone: Rclone, mini_site: Path, mini_site_changed: Path) -> None:
    s3 = rclone.client()
    rclone.bucket("refsite")
    old, new = load_site(mini_site), load_site(mini_site_changed)
    deploy_site(old, s3_target(rclone.url, "refsite", "change"))
    # leftovers of older builds (which --prune removes) and an old snapshot (which it never touches)
    stale = [v2_file("retired_category"), "legacy/retired.json", "stray.txt"]
    for key in [*stale, snapshot_key(0, "api/old.json")]:
        s3.put_object(Bucket="refsite", Key=f"change/{key}", Body=b"old")
    before = list_bucket(s3, "refsite", "change/")

    dry = hmr_deploy(mini_site_changed, "s3://refsite/change", "--prune", "--dry-run", endpoint=rclone.url)
    assert dry.returncode == 0, dry.stderr
    assert sorted(ln.split()[1] for ln in dry.stdout.splitlines() if ln.startswith("delete ")) == sorted(stale)
    assert list_bucket(s3, "refsite", "change/") == before

    with S3Proxy(rclone.port) as proxy:
        proxy.throttle_puts = 3  # the store says SlowDown to the first three uploads: retried with backoff
        r = hmr_deploy(mini_site_changed, "s3://refsite/change", "--prune", endpoint=proxy.url)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\b3 deleted\b", r.stdout) and re.search(r"\b3 retries\b", r.stdout), r.stdout

    old_sha = {o.key: o.sha256 for o in old.objects}
    changed = {o.key for o in new.objects if o.phase != PHASE_MUTABLE or old_sha.get(o.key) != o.sha256}
    assert v2_key("esrgan") in changed and "legacy/esrgan.json" in changed
    assert v2_key("gfpgan") not in changed and "legacy/gfpgan.json" not in changed
    assert len(changed) < len(new.objects) / 3, sorted(changed)  # a handful of keys, not the site
    holdable = changed | {snapshot_key(2, k) for k in changed if k.startswith(SNAPSHOT_SCOPE)}
    holdable -= shadowed_keys(holdable | {o.key for o in new.objects})
    # the bucket-level requests (the CORS rule, after the objects) are no object uploads
    log = [(m, p) for m, p in proxy.log if m == "POST" or len(p.split("/", 3)) == 4]
    put_keys = [p.split("/", 3)[3] for m, p in log if m == "PUT"]
    assert set(put_keys) == holdable
    assert uploaded(r) == len(holdable) == len(put_keys) - 3

    # order: every snapshot key, then the changed mutable keys, then the manifest; deletions last
    kinds = []
    for method, path in log:
        if method == "PUT":
            key = path.split("/", 3)[3]
            kinds.append(0 if key.startswith(SNAPSHOTS) else 2 if key in MANIFEST_KEYS else 1)
        elif method == "POST":  # DeleteObjects
            kinds.append(3)
    assert kinds == sorted(kinds) and kinds[-1] == 3 and 0 in kinds and 1 in kinds and 2 in kinds

    after = list_bucket(s3, "refsite", "change/")
    assert not set(stale) & set(after) and snapshot_key(0, "api/old.json") in after
    for key, meta in before.items():  # nothing else deleted; unchanged objects untouched
        if key not in stale and key not in holdable:
            assert after[key] == meta, key
    live = s3.get_object(Bucket="refsite", Key=f"change/{MANIFEST_FILE}")["Body"].read()
    assert live == (mini_site_changed / MANIFEST_FILE).read_bytes()


def _killed_deploy(site: Path, to: str, endpoint_port: int, kill_after: int) -> int:
    """Run `hmr deploy` through a proxy that SIGKILLs it when it sends upload number kill_after + 1;
    returns how many uploads reached the store."""
    with S3Proxy(endpoint_port) as proxy:
        proc = subprocess.Popen([*HMR, "deploy", "--site", str(site), "--to", to, "--endpoint-url", proxy.url],
                                env={**os.environ, **aws_env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proxy.kill_after_puts = (kill_after, proc.kill)
        proc.communicate(timeout=120)
    assert proc.returncode == -9  # SIGKILL: no cleanup of any kind ran
    return proxy.puts_forwarded


def test_a_deploy_killed_midway_leaves_the_old_manifest_live_and_the_next_run_completes(
        rclone: Rclone, mini_site: Path, mini_site_changed: Path) -> None:
    s3 = rclone.client()
    rclone.bucket("refsite")
    old, new = load_site(mini_site), load_site(mini_site_changed)
    deploy_site(old, s3_target(rclone.url, "refsite", "crash"))

    def live() -> bytes:
        return s3.get_object(Bucket="refsite", Key=f"crash/{MANIFEST_FILE}")["Body"].read()

    # killed during the snapshot phase, then (the rerun) during the mutable phase
    plan = plan_deploy(new, s3_target(rclone.url, "refsite", "crash"), dry_run=True)
    assert _killed_deploy(mini_site_changed, "s3://refsite/crash", rclone.port, 2) == 2
    assert live() == (mini_site / MANIFEST_FILE).read_bytes()  # the old generation is still the live one
    rerun = plan_deploy(new, s3_target(rclone.url, "refsite", "crash"), dry_run=True)
    assert len(rerun.uploads) == len(plan.uploads) - 2  # the two that made it count as done
    kill_after = sum(u.obj.phase == PHASE_SNAPSHOT for u in rerun.uploads) + 2
    assert kill_after < len(rerun.uploads) - 2
    assert _killed_deploy(mini_site_changed, "s3://refsite/crash", rclone.port, kill_after) == kill_after
    assert live() == (mini_site / MANIFEST_FILE).read_bytes()

    r = hmr_deploy(mini_site_changed, "s3://refsite/crash", endpoint=rclone.url)
    assert r.returncode == 0, r.stderr
    assert uploaded(r) == len(rerun.uploads) - kill_after  # what made it before a kill is not sent again
    assert live() == (mini_site_changed / MANIFEST_FILE).read_bytes()
    assert uploaded(hmr_deploy(mini_site_changed, "s3://refsite/crash", endpoint=rclone.url)) == 0


def test_bad_credentials_and_a_missing_bucket_give_one_line_and_exit_1(rclone: Rclone, mini_site: Path) -> None:
    rclone.bucket("refsite")
    wrong_secret = "definitely-not-the-secret-0042"
    r = hmr_deploy(mini_site, "s3://refsite/prod", endpoint=rclone.url,
                   env=aws_env(secret=wrong_secret))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "access denied" in r.stderr, r.stderr
    assert wrong_secret not in r.stdout + r.stderr

    r = hmr_deploy(mini_site, "s3://no-such-bucket/prod", endpoint=rclone.url)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "bucket 'no-such-bucket' does not exist" in r.stderr, r.stderr

    env = aws_env()
    env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = ""
    r = hmr_deploy(mini_site, "s3://refsite/prod", endpoint=rclone.url, env=env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "credentials" in r.stderr, r.stderr


def test_dry_run_changes_nothing(rclone: Rclone, mini_site: Path) -> None:
    rclone.bucket("refsite")
    r = hmr_deploy(mini_site, "s3://refsite/dry", "--dry-run", endpoint=rclone.url)
    assert r.returncode == 0, r.stderr
    assert f"upload {MANIFEST_FILE} (new" in r.stdout
    assert re.search(r"plan for s3://refsite/dry/: generation 1 \(live: none\): \d+ uploads", r.stdout)
    assert list_bucket(rclone.client(), "refsite", "dry/") == {}


def test_metadata_lost_by_a_restart_costs_no_reupload_and_check_metadata_restores_it(
        mini_site: Path, tmp_path: Path) -> None:
    # the legacy files and the manifest are enough to show it (and cheap: a restart loses every header)
    full = load_site(mini_site)
    site = Site(full.root, full.generation, full.manifest, full.manifest_sha256,
                [o for o in full.objects if o.key.startswith("legacy/") or o.phase != PHASE_MUTABLE])
    server = Rclone(tmp_path / "s3").start()
    try:
        server.bucket("b1")
        assert deploy_site(site, s3_target(server.url, "b1", "site")).uploaded == 2 * len(site.objects)
    finally:
        server.stop()
    server = Rclone(tmp_path / "s3").start()  # same files, metadata forgotten
    try:
        s3 = server.client()
        key = "site/legacy/esrgan.json"
        assert s3.head_object(Bucket="b1", Key=key).get("CacheControl") is None
        assert deploy_site(site, s3_target(server.url, "b1", "site")).uploaded == 0  # the ETags still prove the bytes
        repaired = deploy_site(site, s3_target(server.url, "b1", "site"), check_metadata=True)
        assert repaired.uploaded == len(site.objects)  # the live keys; a snapshot is written only once
        head = s3.head_object(Bucket="b1", Key=key)
        assert head["CacheControl"] == MUTABLE_CACHE and head["ContentType"] == "application/json"
        assert deploy_site(site, s3_target(server.url, "b1", "site"), check_metadata=True).uploaded == 0
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------
# file:// target


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_file_target_same_semantics(corpus_data: Path, mini_site: Path, mini_site_changed: Path,
                                    tmp_path: Path) -> None:
    www = tmp_path / "www"
    to = f"file://{www}"
    r = hmr_deploy(mini_site, to)
    assert r.returncode == 0, r.stderr
    site = load_site(mini_site)
    present, skipped = expected_keys(site, json_twins=True)
    tree = _tree(www)
    assert any("/model/" in k for k in present) and not any("/model/" in k for k in skipped)
    assert set(tree) == present
    by_key = {o.key: o for o in site.objects}
    for key, data in tree.items():
        o = by_key[key.split("/", 2)[2] if key.startswith(SNAPSHOTS) else key]
        assert hashlib.sha256(data).hexdigest() == o.sha256, key

    assert uploaded(hmr_deploy(mini_site, to)) == 0
    (www / "legacy" / "retired.json").write_text("{}")
    r = hmr_deploy(mini_site_changed, to, "--prune")
    assert r.returncode == 0 and "1 deleted" in r.stdout, r.stdout + r.stderr
    assert not (www / "legacy" / "retired.json").exists()
    assert (www / MANIFEST_FILE).read_bytes() == (mini_site_changed / MANIFEST_FILE).read_bytes()
    assert (www / "snapshots" / "2" / "legacy" / "esrgan.json").read_bytes() == \
        (mini_site_changed / "legacy" / "esrgan.json").read_bytes()
    assert not (www / "snapshots" / "2" / "legacy" / "stable_diffusion.json").exists()  # unchanged in gen 2

    # generations only move forward (the API says which key refused it)
    r = hmr_deploy(mini_site, to)
    assert r.returncode == 1 and "newer than this site's 1" in r.stderr, r.stderr
    with pytest.raises(PublishError, match="the live generation 2 is newer than this site's 1") as refused:
        deploy(mini_site, to)
    assert refused.value.key == MANIFEST_FILE
    again = deploy(mini_site_changed, to, prune=True)  # the API, as `hmr deploy` calls it
    assert (again.uploaded, again.deleted, again.plan.generation) == (0, 0, 2)

    # a fresh checkout: pull the live manifest, build, and the count continues
    fresh = tmp_path / "fresh-site"
    r = hmr_in_process("deploy", "--site", str(fresh), "--to", to, "--pull-manifest")
    assert r.returncode == 0 and "live generation 2" in r.stdout, r.stdout + r.stderr
    from builder.site.build import build

    build(corpus_data, fresh)
    assert load_site(fresh).generation == 3
    assert hmr_deploy(fresh, to).returncode == 0


def test_a_failed_deploy_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    not_built = tmp_path / "not-built"
    not_built.mkdir()
    message = f"{not_built}: no {MANIFEST_FILE} (not a built site? run `hmr build` first)"
    args = ("deploy", "--site", str(not_built), "--to", f"file://{tmp_path / 'www'}")
    r = run_hmr(*args)
    assert (r.returncode, r.stderr) == (1, f"error: {message}\n")
    r = run_hmr(*args, "--debug")  # after the command name, as `hmr --debug deploy ...`
    assert r.returncode == 1 and r.stderr.startswith("Traceback (most recent call last):\n"), r.stderr
    assert r.stderr.splitlines()[-1] == f"builder.errors.PublishError: {message}"
    assert not (tmp_path / "www").exists()  # nothing was written: the site is checked first

    with pytest.raises(PublishError) as e:
        deploy(not_built, f"file://{tmp_path / 'www'}")
    assert e.value.key == MANIFEST_FILE
    for url in ("ftp://host/x", "s3:///no-bucket", "file://host/path"):
        with pytest.raises(ConfigError, match="file:///PATH|s3://BUCKET/PREFIX"):
            open_target(url)
