"""Lossless import + build on the real corpus: current and every historical version."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from builder.legacy.importer import import_legacy
from builder.site.build import build
from tests.helpers import CORPUS, LEGACY_CURRENT, run_hmr

BYTE_EXACT = ("stable_diffusion.json", "db.json", "codeformer.json", "esrgan.json", "gfpgan.json",
              "safety_checker.json", "miscellaneous.json")
PARSE_EQUAL = ("clip.json", "controlnet.json", "blip.json")
HISTORY = sorted(p for p in (CORPUS / "legacy" / "history").glob("*/*") if p.is_dir())


def ordered(raw: bytes) -> object:
    return json.loads(raw, object_pairs_hook=list)


def csv_rows(raw: str) -> list[tuple[str, dict]]:
    """Rows after duplicate resolution: a repeated name keeps its first position, the later values win."""
    seen: dict[str, dict] = {}
    for r in csv.DictReader(io.StringIO(raw, newline="")):
        seen.setdefault(r["name"], r)
        seen[r["name"]] = r
    return list(seen.items())


def assert_round_trip(src: Path, site: Path) -> None:
    legacy = site / "legacy"
    for name in BYTE_EXACT:
        if (src / name).exists():
            assert (legacy / name).read_bytes() == (src / name).read_bytes(), f"{name} differs"
    for name in PARSE_EQUAL:
        if (src / name).exists():
            assert ordered((legacy / name).read_bytes()) == ordered((src / name).read_bytes()), name
    if (src / "models.csv").exists():
        ours = (legacy / "models.csv").read_bytes().decode()
        theirs = (src / "models.csv").read_bytes().decode()
        assert csv_rows(ours) == csv_rows(theirs)
        assert ours.count("\r\n") == ours.count("\n")  # CRLF like the text repo
    v1 = site / "api" / "model_references" / "v1"
    if (src / "stable_diffusion.json").exists():
        assert (v1 / "image_generation.json").read_bytes() == (src / "stable_diffusion.json").read_bytes()
    if (src / "db.json").exists():
        assert (v1 / "text_generation.json").read_bytes() == (src / "db.json").read_bytes()


@pytest.mark.parametrize("src", [LEGACY_CURRENT, *HISTORY], ids=lambda p: p.name if p != LEGACY_CURRENT else "current")
def test_import_then_build_reproduces_legacy_files(src: Path, tmp_path: Path) -> None:
    data, site = tmp_path / "data", tmp_path / "site"
    import_legacy(str(src), data)
    build(data, site)
    assert_round_trip(src, site)


def test_v1_equals_legacy_for_every_category(corpus_site: Path) -> None:
    v1 = corpus_site / "api" / "model_references" / "v1"
    from builder.categories import LEGACY

    for cat in LEGACY:
        assert (v1 / f"{cat.name}.json").read_bytes() == (corpus_site / "legacy" / cat.legacy_json_file).read_bytes()
    assert (v1 / "lora.json").read_bytes() == b"{}"
    assert json.loads((v1 / "model_categories.json").read_bytes())[0] == "blip"


def test_reimport_changes_no_file(corpus_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus_data, data)
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    summary = import_legacy(str(LEGACY_CURRENT), data)
    after = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    assert summary.written == 0 and summary.removed == 0
    assert before == after


def test_import_via_cli_and_record_layout(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = run_hmr("import-legacy", str(LEGACY_CURRENT), "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert "image_generation 161" in r.stdout and "text_generation 719" in r.stdout
    vit = data / "clip" / "ViT-L" / "14.yaml"
    first = vit.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../../schemas/clip.schema.json"
    rec = yaml.safe_load(vit.read_text())
    assert rec["name"] == "ViT-L/14" and rec["legacy"]["type"] == "clip"
    text = data / "text_generation" / "acrastt" / "Marx-3B-V3.yaml"
    assert yaml.safe_load(text.read_text())["parameters"] == 3_000_000_000
    settings = yaml.safe_load((data / "text_generation" / "_category.yaml").read_text())
    assert settings["order"][0] == "acrastt/Marx-3B-V3" and "min_p" in settings["generation_params"]


FIELDS = ("name", "description", "version", "baseline", "inpainting", "nsfw", "style", "tags", "showcases",
          "trigger", "homepage", "requirements", "size_on_disk_bytes", "optimization", "display_name", "url",
          "instruct_format", "settings", "controlnet_style", "pretrained_name")


def _norm(v: object) -> object:
    return None if v in (None, "", [], {}, False) else v


def _downloads(r: dict) -> list[tuple]:
    return [(d.get("file_name"), d.get("file_url") or None, (d.get("sha256sum") or "").lower() or None,
             d.get("file_purpose")) for d in (r.get("config") or {}).get("download", [])]


def test_v2_matches_existing_library_conversion(corpus_site: Path) -> None:
    compared = 0
    for ref_file in sorted((CORPUS / "reference-v2").glob("*.json")):
        cat = "image_generation" if ref_file.stem == "stable_diffusion" else ref_file.stem
        ref = json.loads(ref_file.read_bytes())
        ours = json.loads((corpus_site / "api" / "model_references" / "v2" / f"{cat}.json").read_bytes())
        assert list(ours) == list(ref), cat  # same models, same order
        for key, a in ref.items():
            b = ours[key]
            for f in FIELDS:
                assert _norm(a.get(f)) == _norm(b.get(f)), (cat, key, f)
            assert (a.get("parameters") or a.get("parameters_count")) == b.get("parameters"), (cat, key)
            assert _downloads(a) == _downloads(b), (cat, key)
            compared += 1
    assert compared == 913


def test_v2_has_no_legacy_block_and_all_categories(corpus_site: Path) -> None:
    from builder.categories import NAMES

    v2 = corpus_site / "api" / "model_references" / "v2"
    for name in NAMES:
        doc = json.loads((v2 / f"{name}.json").read_bytes())
        assert all("legacy" not in rec for rec in doc.values())
    assert json.loads((v2 / "lora.json").read_bytes()) == {}
    one = json.loads((v2 / "clip" / "model" / "ViT-L" / "14.json").read_bytes())
    assert one["name"] == "ViT-L/14" and one["record_type"] == "clip"
    assert (v2 / "image_generation.json").read_bytes().startswith(b'{"stable_diffusion_2.1":{"record_type"')


def test_edit_of_v2_record_reaches_every_output(data_copy: Path, tmp_path: Path) -> None:
    target = data_copy / "image_generation" / "stable_diffusion.yaml"
    rec = yaml.safe_load(target.read_text())
    rec["description"] = "Edited <b>here</b> \u2014 by a test"
    rec["config"]["download"][0]["sha256sum"] = "a" * 64
    target.write_text(yaml.safe_dump(rec, sort_keys=False, allow_unicode=True))  # the schema comment is gone too
    site = tmp_path / "site"
    build(data_copy, site)
    legacy = json.loads((site / "legacy" / "stable_diffusion.json").read_bytes())["stable_diffusion"]
    assert legacy["description"] == rec["description"]
    files = legacy["config"]["files"]
    assert files[0]["sha256sum"] == "a" * 64 and "md5sum" not in files[0]  # a stale md5 is dropped
    assert files[1] == {"path": "v1-inference.yaml"}
    v2 = json.loads((site / "api/model_references/v2/image_generation.json").read_bytes())["stable_diffusion"]
    assert v2["description"] == rec["description"]
    raw = (site / "legacy" / "stable_diffusion.json").read_bytes()
    assert b"\\u2014 by a test" in raw  # ensure_ascii like upstream


def test_text_edit_regenerates_db_json(data_copy: Path, tmp_path: Path) -> None:
    target = data_copy / "text_generation" / "acrastt" / "Marx-3B-V3.yaml"
    rec = yaml.safe_load(target.read_text())
    rec["parameters"] = 7_500_000_000
    rec["style"] = "roleplay"
    target.write_text(yaml.safe_dump(rec, sort_keys=False))
    site = tmp_path / "site"
    build(data_copy, site)
    db = json.loads((site / "legacy" / "db.json").read_bytes())
    for key in ("acrastt/Marx-3B-V3", "aphrodite/acrastt/Marx-3B-V3", "koboldcpp/Marx-3B-V3"):
        assert db[key]["tags"] == ["8B", "roleplay"]  # 7.5 rounds half to even
        assert db[key]["parameters"] == 7_500_000_000
    rows = dict(csv_rows((site / "legacy" / "models.csv").read_text()))
    assert rows["acrastt/Marx-3B-V3"]["parameters_bn"] == "7.5"


def test_new_model_needs_one_file(data_copy: Path, tmp_path: Path) -> None:
    new = data_copy / "image_generation" / "Test Model XL.yaml"
    new.write_text(
        "# yaml-language-server: $schema=../../schemas/image_generation.schema.json\n"
        "name: Test Model XL\nversion: '1'\nconfig:\n  download:\n  - file_name: test.safetensors\n"
        "    file_url: https://example.org/test.safetensors\n    sha256sum: FIXME\n"
        "baseline: stable_diffusion_xl\nnsfw: false\nstyle: realistic\nmetadata:\n  created_at: 1900000000\n")
    site = tmp_path / "site"
    build(data_copy, site)
    legacy = json.loads((site / "legacy" / "stable_diffusion.json").read_bytes())
    assert list(legacy)[-1] == "Test Model XL"  # unpinned keys follow the pinned order
    assert legacy["Test Model XL"] == {
        "name": "Test Model XL", "baseline": "stable_diffusion_xl", "type": "ckpt", "inpainting": False,
        "version": "1", "style": "realistic", "nsfw": False, "download_all": False,
        "config": {"files": [{"path": "test.safetensors"}],
                   "download": [{"file_name": "test.safetensors", "file_path": "",
                                 "file_url": "https://example.org/test.safetensors"}]},
    }


def test_rebuild_without_change_writes_nothing(corpus_data: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(corpus_data, site)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in site.rglob("*") if p.is_file()}
    result = build(corpus_data, site)
    after = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in site.rglob("*") if p.is_file()}
    assert result.stats.written == 0 and before == after


def test_changed_rebuild_keeps_unchanged_files_and_is_deterministic(data_copy: Path, tmp_path: Path) -> None:
    site, other = tmp_path / "site", tmp_path / "other"
    build(data_copy, site)
    build(data_copy, other)
    for p in site.rglob("*"):
        if p.is_file():
            assert p.read_bytes() == (other / p.relative_to(site)).read_bytes()
    ino = (site / "legacy" / "clip.json").stat().st_ino
    (data_copy / "esrgan" / "NMKD_Siax.yaml").unlink()
    result = build(data_copy, site)
    assert result.stats.removed == 2  # the per-model file and the model's HTML page
    assert (site / "legacy" / "clip.json").stat().st_ino == ino  # untouched files are kept, not rewritten
    assert "NMKD_Siax" not in json.loads((site / "legacy" / "esrgan.json").read_bytes())
    # no temporary trees left behind: only the generation folders (the live one and the one before) and
    # the kept generation number
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert all(n.split(".")[2].startswith(("gen-", "generation")) for n in left), left
    assert len([n for n in left if n.startswith(".site.gen-")]) <= 2 and not [n for n in left if "-new-" in n]


def test_legacy_import_from_raw_github_url(tmp_path: Path) -> None:
    """SRC may be a raw GitHub base URL: served here by a local HTTP server over the corpus."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(LEGACY_CURRENT))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/"
        data, site = tmp_path / "data", tmp_path / "site"
        summary = import_legacy(base, data)
        assert summary.categories["image_generation"] == 161 and summary.categories["text_generation"] == 719
        build(data, site)
        assert_round_trip(LEGACY_CURRENT, site)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cli_build_reports_counts(corpus_data: Path, tmp_path: Path) -> None:
    r = run_hmr("build", "--data", str(corpus_data), "--out", str(tmp_path / "site"))
    assert r.returncode == 0, r.stderr
    assert "written" in r.stdout
    assert "control_qr_sdxl.yaml:/name: warning: name 'control_qr_xl' differs" in r.stderr
    assert os.path.exists(tmp_path / "site" / "legacy" / "stable_diffusion.json")


def test_edit_wins_over_a_recorded_absence(tmp_path: Path) -> None:
    """Old files lack `inpainting`; the block records that, but setting it in v2 must show in v1."""
    src = next(p for p in HISTORY if p.name.startswith("2023-05-06"))
    data, site = tmp_path / "data", tmp_path / "site"
    import_legacy(str(src), data)
    legacy_in = json.loads((src / "stable_diffusion.json").read_bytes())
    key = next(k for k, r in legacy_in.items() if "inpainting" not in r)
    path = next(p for p in (data / "image_generation").rglob("*.yaml") if yaml.safe_load(p.read_text())["name"] == key)
    rec = yaml.safe_load(path.read_text())
    assert "inpainting" in rec["legacy"]["omit"]
    build(data, site)
    assert "inpainting" not in json.loads((site / "legacy" / "stable_diffusion.json").read_bytes())[key]
    rec["inpainting"] = True
    path.write_text(yaml.safe_dump(rec, sort_keys=False, allow_unicode=True))
    build(data, site)
    assert json.loads((site / "legacy" / "stable_diffusion.json").read_bytes())[key]["inpainting"] is True
