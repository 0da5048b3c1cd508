"""Crash-atomic publication: builds killed (SIGKILL) at random moments never leave `site` incomplete
or missing once it existed, the generation never goes backwards (not even when `site` itself is
lost), and the next build cleans what the killed ones left."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.helpers import FIXTURES, HMR, ROOT, run_hmr

MANIFEST = "api/model_references/v2/manifest.json"


def _check_complete(site: Path) -> int:
    """`site` is a whole tree: every file its manifest lists is there with its digest; its generation."""
    doc = json.loads((site / MANIFEST).read_bytes())
    from builder.routes import route_map

    files = {r.key: r.file for r in route_map(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
             .values()}
    for key, entry in doc["files"].items():
        assert key in files, key
        assert hashlib.sha256((site / files[key]).read_bytes()).hexdigest() == entry["sha256"], key
    return int(doc["generation"])


def _edit(data: Path, n: int) -> None:
    path = data / "esrgan" / "Example_x4.yaml"
    text = path.read_text().split("\ndescription:")[0].rstrip("\n")
    path.write_text(f"{text}\ndescription: edit {n}\n")


def test_killed_builds_leave_a_whole_site_and_a_rising_generation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    site = tmp_path / "site"
    assert run_hmr("build", "--data", str(data), "--out", str(site)).returncode == 0
    seen = _check_complete(site)
    rng = random.Random(13)
    t0 = time.monotonic()
    started = time.monotonic()
    run_hmr("build", "--data", str(data), "--out", str(site))
    full = time.monotonic() - started  # how long a no-change build takes here
    must_exist = True
    for n in range(6):
        _edit(data, n)
        if n == 3:
            os.unlink(site)  # the site itself lost: the generation kept beside it still counts
            must_exist = False
        proc = subprocess.Popen([*HMR, "build", "--data", str(data), "--out", str(site)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * full * 1.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        must_exist = must_exist or site.exists()  # once there again, it never goes away
        if must_exist:
            gen = _check_complete(site)
            assert gen >= seen
            seen = gen
    _edit(data, 99)
    assert run_hmr("build", "--data", str(data), "--out", str(site)).returncode == 0
    assert _check_complete(site) > seen
    left = sorted(p.name for p in tmp_path.iterdir())
    gens = [n for n in left if n.startswith(".site.gen-")]
    assert 1 <= len(gens) <= 2 and os.readlink(site) in gens
    assert [n for n in left if n not in gens] == [".site.generation", "data", "site"], left
    assert time.monotonic() - t0 < 60
