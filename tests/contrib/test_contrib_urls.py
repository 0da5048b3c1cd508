"""`hmr check-urls` against a local HTTPS server (its own throwaway CA, trusted through --ca-bundle):
live, dead, redirecting, slow, wrong-length and HEAD-refusing URLs. Nothing leaves 127.0.0.1.

Validation only accepts https:// download URLs, so the test records point at https://127.0.0.1:PORT
and the command verifies TLS against the test CA: the same code path as production, with a
different trust anchor (there is deliberately no switch that turns verification off).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.contrib import crud
from builder.errors import ConfigError
from tests.contrib_support import HTTPSFiles, answer, make_ca
from tests.helpers import run_hmr

SIZE = 1000


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server(tls: tuple[Path, Path, Path]) -> Iterator[HTTPSFiles]:
    _, cert, key = tls
    srv = HTTPSFiles(cert, key, {})
    both = lambda r: {"HEAD": r, "GET": r}  # noqa: E731
    srv.routes.update({
        "/live.bin": both(answer(200, SIZE)),
        "/dead.bin": both(answer(404)),
        "/redirect.bin": both(answer(302, 0, {"Location": f"{srv.base}/hop.bin"})),
        "/hop.bin": both(answer(301, 0, {"Location": "/live.bin"})),
        "/slow.bin": both(answer(200, SIZE, delay=5.0)),
        "/sluggish.bin": both(answer(200, SIZE, delay=0.8)),
        "/wrong.bin": both(answer(200, SIZE - 1)),
        "/nohead.bin": {"HEAD": answer(405), "GET": answer(206, 1, {"Content-Range": f"bytes 0-0/{SIZE}"},
                                                           body=b"x")},
        "/disk.bin": both(answer(200, 500)),
        "/later.bin": both(answer(200, SIZE)),
        **{f"/busy{i}.bin": both(answer(200, SIZE, delay=0.2)) for i in range(6)},
    })
    yield srv
    srv.stop()


def _add(data: Path, key: str, url: str, size: int | None = SIZE, disk: int | None = None) -> None:
    dl: dict = {"file_name": f"{key}.safetensors", "file_url": url, "sha256sum": "FIXME"}
    if size is not None:
        dl["size_bytes"] = size
    rec: dict = {"baseline": "stable_diffusion_1", "nsfw": False, "config": {"download": [dl]}}
    if disk is not None:
        rec["size_on_disk_bytes"] = disk
    crud.add_model(data, "image_generation", key, rec)


@pytest.fixture(scope="module")
def data(server: HTTPSFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("urls") / "data"
    d.mkdir()
    b = server.base
    for key, path in (("live", "live.bin"), ("dead", "dead.bin"), ("redirect", "redirect.bin"),
                      ("slow", "slow.bin"), ("sluggish", "sluggish.bin"), ("wrong", "wrong.bin"),
                      ("nohead", "nohead.bin"), ("live-too", "live.bin")):
        _add(d, key, f"{b}/{path}")
    _add(d, "disk", f"{b}/disk.bin", size=None, disk=600)
    return d


def test_check_urls_reports_each_case(data: Path, server: HTTPSFiles, tls: tuple[Path, Path, Path]) -> None:
    ca, _, _ = tls
    r = run_hmr("check-urls", "--data", str(data), "--ca-bundle", str(ca), "--timeout", "1.5",
                "--slow-after", "0.5", "--concurrency", "4", "--format", "json")
    assert r.returncode == 1, r.stderr  # a dead URL
    doc = json.loads(r.stdout)
    res = {x["url"].rsplit("/", 1)[1]: x for x in doc["results"]}
    assert set(res) == {"live.bin", "dead.bin", "redirect.bin", "slow.bin", "sluggish.bin", "wrong.bin",
                        "nohead.bin", "disk.bin"}  # live.bin is used twice and checked once
    b = server.base

    live = res["live.bin"]
    assert (live["outcome"], live["status"], live["method"], live["content_length"]) == ("ok", 200, "HEAD", SIZE)
    assert live["refs"] == ["image_generation/live: live.safetensors", "image_generation/live-too: live-too.safetensors"]
    assert not live["redirects"]
    # (on a loaded machine even a local answer may take longer than --slow-after: only that may be warned)
    assert all(w.startswith("slow: ") for w in live["warnings"])

    dead = res["dead.bin"]
    assert (dead["outcome"], dead["status"], dead["method"]) == ("dead", 404, "GET") and dead["failed"]
    assert ("GET", "/dead.bin", "bytes=0-0") in server.requests  # HEAD refused -> ranged GET

    red = res["redirect.bin"]
    assert (red["outcome"], red["status"], red["content_length"]) == ("ok", 200, SIZE)
    assert red["redirects"] == [f"{b}/redirect.bin", f"{b}/hop.bin"] and red["final_url"] == f"{b}/live.bin"

    slow = res["slow.bin"]
    assert slow["outcome"] == "timeout" and slow["failed"] and slow["status"] is None

    sluggish = res["sluggish.bin"]
    assert sluggish["outcome"] == "ok" and any(w.startswith("slow: ") for w in sluggish["warnings"])

    wrong = res["wrong.bin"]
    assert wrong["outcome"] == "wrong-length" and wrong["failed"]
    assert wrong["error"] == f"content length {SIZE - 1} != size_bytes {SIZE}"

    nohead = res["nohead.bin"]
    assert (nohead["outcome"], nohead["status"], nohead["method"], nohead["content_length"]) == \
        ("ok", 206, "GET", SIZE)

    disk = res["disk.bin"]
    assert disk["outcome"] == "ok" and disk["warnings"] == ["content length 500 != size_on_disk_bytes 600"]

    summary = doc["summary"]
    # sluggish and disk warn on every run; on a loaded machine other answers may be slow as well
    assert summary.pop("warnings") == sum(bool(x["warnings"]) for x in doc["results"]) >= 2
    assert summary == {"checked": 8, "ok": 5, "dead": 1, "timeout": 1, "unreachable": 0, "wrong-length": 1}
    assert all(p.startswith("https://127.0.0.1:") for p in (x["url"] for x in doc["results"]))


def test_text_report_and_tls_is_verified(data: Path, tls: tuple[Path, Path, Path]) -> None:
    from builder.contrib import diff, urls

    ca, _, _ = tls
    targets = [t for t in urls.targets_of(diff.snapshot_of_data(data).v2) if not t.url.endswith("/slow.bin")]
    lines = urls.render(urls.check(targets, timeout=5, slow_after=0.5, ca_bundle=ca), "text").splitlines()
    assert any(line.startswith("DEAD         404 ") and "/dead.bin" in line for line in lines)
    assert any(line.startswith("WRONG-LENGTH 200 ") and "/wrong.bin" in line for line in lines)
    assert any(line.startswith("OK           200 ") and "2 redirect(s) -> " in line for line in lines)
    assert any(line.startswith("OK           206 ") and "/nohead.bin" in line for line in lines)
    assert lines[-1].startswith("7 URL(s) checked: 5 ok, 1 dead, 1 wrong-length, ")
    # without the test CA the server's certificate is not trusted: every URL is unreachable
    r = run_hmr("check-urls", "--data", str(data), "--timeout", "1.5", "--format", "json")
    assert r.returncode == 1
    outcomes = {x["outcome"] for x in json.loads(r.stdout)["results"]}
    assert outcomes == {"unreachable"}, r.stdout
    assert "CERTIFICATE_VERIFY_FAILED" in r.stdout


def test_changed_only_and_bounded_concurrency(data: Path, server: HTTPSFiles, tls: tuple[Path, Path, Path],
                                              tmp_path: Path) -> None:
    import shutil

    from builder.contrib import urls
    from builder.site.build import build

    ca, _, _ = tls
    work = tmp_path / "data"
    shutil.copytree(data, work)
    base = tmp_path / "base-site"
    build(work, base)
    crud.update_model(work, "image_generation", "dead", [("config.download.0.file_url", f"{server.base}/later.bin")])
    _add(work, "brand-new", f"{server.base}/live.bin")
    r = run_hmr("check-urls", "--data", str(work), "--changed-only", str(base), "--ca-bundle", str(ca),
                "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    changed = {"later.bin": ["image_generation/dead: dead.safetensors"],
               "live.bin": ["image_generation/brand-new: brand-new.safetensors"]}
    assert {x["url"].rsplit("/", 1)[1]: x["refs"] for x in doc["results"]} == changed
    # the API the command wraps: the same selection, and one source at a time
    results = urls.check_urls(data_dir=work, changed_since=str(base), ca_bundle=ca)
    assert {x.url.rsplit("/", 1)[1]: (x.refs, x.outcome) for x in results} == \
        {name: (refs, "ok") for name, refs in changed.items()}
    with pytest.raises(ConfigError):
        urls.check_urls(data_dir=work, site_dir=base)

    # at most --concurrency requests in flight
    targets = [urls.Target(f"{server.base}/busy{i}.bin", [f"t/{i}"], SIZE) for i in range(6)]
    server.max_in_flight = 0
    results = urls.check(targets, concurrency=2, timeout=5, ca_bundle=ca)
    assert [x.outcome for x in results] == ["ok"] * 6
    assert server.max_in_flight == 2
