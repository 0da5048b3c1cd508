"""The compatibility oracle (DESIGN §8): the existing client, horde-model-reference 8.6.2 with unknown
fields forbidden (AI_HORDE_TESTING=1) and the GitHub fallback off, reads every category of the corpus
build from `hmr serve` and from nginx with the generated config: all categories, the expected model
counts and names, and no request that failed or fell back."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.site_support import (
    CLIENT_CATEGORIES,
    HMR,
    REFERENCE_V2,
    ROOT,
    Nginx,
    free_port,
    run_client,
    wait_for_port,
)

EXPECTED_COUNTS = {"image_generation": 161, "text_generation": 719, "controlnet": 18, "clip": 2, "blip": 2,
                   "esrgan": 6, "gfpgan": 1, "codeformer": 1, "safety_checker": 1, "miscellaneous": 2,
                   "controlnet_annotator": 0, "video_generation": 0, "audio_generation": 0}
V2_PATHS = {f"/api/model_references/v2/{c}" for c in CLIENT_CATEGORIES}
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3})')


def reference_names() -> dict[str, list[str]]:
    """Record names per category in corpus/reference-v2 (what 8.6.2's own converter makes of the corpus)."""
    out = {}
    for f in REFERENCE_V2.glob("*.json"):
        cat = "image_generation" if f.stem == "stable_diffusion" else f.stem
        out[cat] = sorted(rec["name"] for rec in json.loads(f.read_bytes()).values())
    assert len(out) == 10
    return out


def check_probe(probe: dict) -> None:
    names = probe["names"]
    assert set(names) == set(CLIENT_CATEGORIES)
    counts = {c: len(v) for c, v in names.items() if v is not None}
    # every category loaded (lora and ti are "managed elsewhere": the client itself drops them)
    assert {c for c, v in names.items() if v is None} <= {"lora", "ti"}
    assert counts == EXPECTED_COUNTS
    for cat, ref in reference_names().items():
        assert names[cat] == ref, cat
    assert probe["backend"] == "HTTPBackend"
    assert probe["stats"]["github_fallbacks"] == 0
    assert probe["stats"]["primary_hits"] == len(CLIENT_CATEGORIES)
    assert probe["typed_image_records"] == 161


def requests_in(log_lines: list[str]) -> list[tuple[str, str, int]]:
    out = []
    for line in log_lines:
        m = ACCESS_LINE.search(line)
        if m:
            out.append((m["method"], m["path"], int(m["status"])))
    return out


def test_existing_client_reads_every_category_from_hmr_serve(client_python: Path, site_dir: Path,
                                                             tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([*HMR, "serve", "--site", str(site_dir), "--port", str(port)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc)
            probe = run_client(client_python, f"http://127.0.0.1:{port}/api", tmp_path / "client-cache")
        finally:
            proc.terminate()
            proc.wait(10)
    check_probe(probe)
    seen = requests_in(log_path.read_text().splitlines())
    assert seen, "the serve log shows no request"
    assert all(status == 200 for _, _, status in seen), [s for s in seen if s[2] != 200]
    assert {p for _, p, _ in seen} == V2_PATHS


def test_existing_client_reads_every_category_from_nginx(client_python: Path, nginx: Nginx,
                                                         tmp_path: Path) -> None:
    before = len(nginx.access_log())
    probe = run_client(client_python, f"http://127.0.0.1:{nginx.port}/api", tmp_path / "client-cache")
    check_probe(probe)
    seen = requests_in(nginx.access_log()[before:])
    assert all(status == 200 for _, _, status in seen), [s for s in seen if s[2] != 200]
    assert {p for _, p, _ in seen} == V2_PATHS


def test_the_probe_notices_a_missing_category(client_python: Path, site_dir: Path,
                                              tmp_path: Path) -> None:
    # the oracle has teeth: without one category file the client loses that category (no fallback)
    import shutil

    site = tmp_path / "site"
    shutil.copytree(site_dir, site, symlinks=True)
    (site / "api" / "model_references" / "v2" / "esrgan.json").unlink()
    port = free_port()
    proc = subprocess.Popen([*HMR, "serve", "--site", str(site), "--port", str(port), "--quiet"], cwd=ROOT)
    try:
        wait_for_port(port, proc)
        probe = run_client(client_python, f"http://127.0.0.1:{port}/api", tmp_path / "client-cache")
    finally:
        proc.terminate()
        proc.wait(10)
    assert probe["names"]["esrgan"] is None
    with pytest.raises(AssertionError):
        check_probe(probe)
