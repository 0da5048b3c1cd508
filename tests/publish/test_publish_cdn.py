"""The corpus site deployed to `rclone serve s3`, read back directly and through nginx as the CDN stand-in
(`proxy_pass` to the bucket), and `hmr deploy --verify-url` against that CDN.

This store runs without credentials (anonymous reads, as a public bucket behind a CDN; the deploy
still signs its requests): reading every key back is then plain HTTP, cheap enough for the whole
corpus. Credentials are tested in test_publish_deploy.py.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.publish.plan import shadowed_keys
from builder.publish.site import SNAPSHOT_SCOPE, load_site
from builder.routes import IMMUTABLE_CACHE, MANIFEST_FILE, SNAPSHOTS, snapshot_key, v1_key, v2_key
from tests.helpers import run_hmr
from tests.publish_support import Ran, Rclone, aws_env, hmr_in_process, list_bucket
from tests.site_support import free_port, nginx_binary, wait_for_port


class ProxyNginx:
    """nginx on a free port in front of `upstream/<path>/`: the CDN stand-in."""

    def __init__(self, prefix: Path, upstream: str, path: str):
        self.prefix, self.port = prefix, free_port()
        for d in ("conf", "logs", "tmp"):
            (prefix / d).mkdir(parents=True, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the (0700) temp dirs
        (prefix / "conf" / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid logs/nginx.pid;\nerror_log logs/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    access_log off;\n"
            "    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;\n"
            "    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;\n"
            f"    server {{\n        listen 127.0.0.1:{self.port};\n"
            f"        location / {{ proxy_pass {upstream}/{path}/; }}\n"
            "    }\n}\n")
        self.args = [nginx_binary(), "-p", str(prefix), "-e", "logs/error.log", "-c", "conf/nginx.conf"]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProxyNginx:
        t = subprocess.run([*self.args, "-t"], capture_output=True, text=True, timeout=30)
        if t.returncode != 0:
            pytest.fail(f"nginx -t: {t.stderr}")
        self.proc = subprocess.Popen([*self.args, "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def public_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rclone]:
    server = Rclone(tmp_path_factory.mktemp("s3-public"), auth=False).start()
    server.bucket("cdn")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cdn(public_store: Rclone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyNginx]:
    server = ProxyNginx(tmp_path_factory.mktemp("nginx-cdn"), public_store.url, "cdn").start()
    try:
        yield server
    finally:
        server.stop()


def hmr_deploy(site: Path, store: Rclone, *extra: str, prefix: str = "site") -> Ran:
    return hmr_in_process("deploy", "--site", str(site), "--to", f"s3://cdn/{prefix}", "--endpoint-url", store.url,
                          *extra, env=aws_env())


def uploaded(r: Ran | subprocess.CompletedProcess) -> int:
    m = re.search(r": (\d+) objects uploaded", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m[1])


def test_corpus_deploy_every_key_right_and_a_redeploy_uploads_nothing(public_store: Rclone,
                                                                      corpus_site: Path) -> None:
    # the real entry point, in its own process (the other runs go through click's runner in-process)
    r = run_hmr("deploy", "--site", str(corpus_site), "--to", "s3://cdn/site", "--endpoint-url", public_store.url,
                env=aws_env())
    assert r.returncode == 0, r.stderr
    site = load_site(corpus_site)
    live = {o.key for o in site.objects}
    everything = live | {snapshot_key(1, k) for k in live if k.startswith(SNAPSHOT_SCOPE)}
    skipped = shadowed_keys(everything)
    present = everything - skipped
    assert uploaded(r) == len(present) and f"{len(skipped)} skipped" in r.stdout

    s3 = public_store.client()
    listing = list_bucket(s3, "cdn", "site/")
    assert set(listing) == present
    # every manifest key is there, but the inner ones this store cannot hold (reported as skipped)
    assert set(site.manifest["files"]) - present <= skipped
    assert {v2_key("image_generation"), v1_key("stable_diffusion"),
            "legacy/models.csv", "index.html", MANIFEST_FILE, snapshot_key(1, MANIFEST_FILE)} <= present

    # read every object back: bytes, content type, cache policy
    by_key = {o.key: o for o in site.objects}
    conn = http.client.HTTPConnection("127.0.0.1", public_store.port, timeout=30)
    problems = []
    for key in sorted(present):
        o = by_key[key.split("/", 2)[2] if key.startswith(SNAPSHOTS) else key]
        conn.request("GET", "/cdn/site/" + quote(key, safe="/"))
        resp = conn.getresponse()
        body = resp.read()
        cache = IMMUTABLE_CACHE if key.startswith(SNAPSHOTS) else o.cache_control
        got = (resp.status, resp.getheader("Content-Type"), resp.getheader("Cache-Control"))
        if got != (200, o.content_type, cache) or body != (corpus_site / o.file).read_bytes():
            problems.append(f"{key}: {got}, {len(body)} bytes")
    conn.close()
    assert problems == []

    r2 = hmr_deploy(corpus_site, public_store)
    assert r2.returncode == 0 and uploaded(r2) == 0, r2.stdout + r2.stderr
    assert list_bucket(s3, "cdn", "site/") == listing  # not one object rewritten


def test_verify_url_passes_through_the_cdn_and_names_a_key_corrupted_behind_it(
        public_store: Rclone, cdn: ProxyNginx, mini_site: Path) -> None:
    base = f"{cdn.url}/small"
    r = hmr_deploy(mini_site, public_store, "--verify-url", base, prefix="small")
    assert r.returncode == 0, r.stderr
    site = load_site(mini_site)
    holdable = len({o.key for o in site.objects} - shadowed_keys(o.key for o in site.objects))
    assert f"verified {holdable} keys at {base}: all match the manifest" in r.stdout

    key = v2_key("esrgan")
    path = public_store.root / "cdn" / "small" / key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size: damage at rest that no listing size shows
    path.write_bytes(bytes(data))
    expected = hashlib.sha256(bytes(data)).hexdigest()

    # checked as it is now (a dry run changes nothing, so the damage stays for the CDN to serve)
    r = hmr_deploy(mini_site, public_store, "--dry-run", "--verify-url", base, prefix="small")
    assert r.returncode == 1
    assert f"verify: {key}: sha256 {expected} differs from the manifest's" in r.stderr, r.stderr
    assert re.search(rf"error: 1 of {holdable} keys differ from the manifest at {re.escape(base)}", r.stderr)
    assert r.stderr.count("\n") == 2  # the key's line, then the one-line error
    assert f"upload {key} (changed" in r.stdout  # the plan saw it too: rclone drops a modified file's metadata

    # a real deploy replaces the damaged object, and then the CDN serves the manifest's bytes again
    r = hmr_deploy(mini_site, public_store, "--verify-url", base, prefix="small")
    assert r.returncode == 0 and uploaded(r) == 1, r.stdout + r.stderr
    assert path.read_bytes() == (mini_site / (key + ".json")).read_bytes()
