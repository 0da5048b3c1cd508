"""The manifest (api/model_references/v2/manifest.json): complete, correct, schema-valid, deterministic,
and a generation count that grows only when published bytes change."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from builder.routes import route_map
from builder.site.build import build
from builder.site.manifest import MANIFEST_FILE, make_manifest, manifest_entries
from builder.site.nginx import NGINX_CONF
from builder.site.serve import site_files
from tests.site_support import ROOT, load_manifest, run_hmr

SCHEMA = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())


def tree_state(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """path -> (bytes, inode, mtime_ns): equal states mean nothing was written."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (p.read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def edit_a_model(data: Path) -> None:
    p = data / "image_generation" / "Deliberate.yaml"
    text = p.read_text()
    assert "\nversion: '2'\n" in text
    p.write_text(text.replace("\nversion: '2'\n", "\nversion: '2.1'\n", 1))


def test_manifest_lists_every_key_with_its_bytes(site_dir: Path) -> None:
    manifest = load_manifest(site_dir)
    routes = route_map(site_files(site_dir))
    expected = {k for k, r in routes.items() if r.file != MANIFEST_FILE}
    assert set(manifest["files"]) == expected
    assert MANIFEST_FILE not in manifest["files"] and MANIFEST_FILE[:-5] not in manifest["files"]
    assert not any(k.startswith("_config/") for k in manifest["files"])
    for key, entry in manifest["files"].items():
        content = (site_dir / routes[key].file).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest(), key
        assert entry["bytes"] == len(content), key
        assert entry["content_type"] == routes[key].content_type, key
    # the keys existing clients read, with the old API's types
    files = manifest["files"]
    for cat in ("image_generation", "text_generation", "lora", "ti", "controlnet_annotator"):
        assert files[f"api/model_references/v2/{cat}"]["content_type"] == "application/json"
    assert files["api/model_references/v1/stable_diffusion"] == files["api/model_references/v1/image_generation"]
    assert files["api/model_references/v1/db.json"] == files["api/model_references/v1/text_generation"]
    assert files["legacy/models.csv"]["content_type"].startswith("text/csv")


def test_manifest_validates_against_its_schema(site_dir: Path) -> None:
    manifest = load_manifest(site_dir)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    assert not sorted(validator.iter_errors(manifest), key=str)
    assert manifest["generation"] == 1 and manifest["schema_version"] == 1
    # the schema has teeth: a wrong digest, an extra field, a traversal key are all rejected
    bad = json.loads(json.dumps(manifest))
    key = next(iter(bad["files"]))
    bad["files"][key]["sha256"] = "xyz"
    bad["files"]["../etc/passwd"] = dict(manifest["files"][key])
    bad["extra"] = 1
    assert len(list(validator.iter_errors(bad))) >= 3


def test_manifest_is_written_once_and_nginx_config_is_not_a_key(site_dir: Path) -> None:
    raw = (site_dir / MANIFEST_FILE).read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert (site_dir / NGINX_CONF).is_file()
    assert NGINX_CONF not in route_map(site_files(site_dir))


def test_no_change_rebuild_writes_nothing_and_keeps_the_generation(site_data_copy: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(site_data_copy, site)
    before = tree_state(site)
    result = build(site_data_copy, site)
    assert result.stats.written == 0 and result.stats.removed == 0
    assert tree_state(site) == before  # bytes, inodes and mtimes: not even the manifest was rewritten
    # a fresh build elsewhere with the same inputs and SOURCE_DATE_EPOCH gives the same bytes
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        r = run_hmr("build", "--data", str(site_data_copy), "--out", str(out), env=env)
        assert r.returncode == 0, r.stderr
    assert {k: v[0] for k, v in tree_state(a).items()} == {k: v[0] for k, v in tree_state(b).items()}
    assert load_manifest(a)["built_at"] == "2023-11-14T22:13:20Z"
    # without SOURCE_DATE_EPOCH too: the time comes from the source, not the clock
    c, d = tmp_path / "c", tmp_path / "d"
    build(site_data_copy, c)
    time.sleep(1.1)
    build(site_data_copy, d)
    assert (c / MANIFEST_FILE).read_bytes() == (d / MANIFEST_FILE).read_bytes()


def test_generation_grows_only_when_content_changes(site_data_copy: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    build(site_data_copy, site)
    first = load_manifest(site)
    assert first["generation"] == 1
    build(site_data_copy, site)
    assert load_manifest(site) == first  # built_at is carried over too
    edit_a_model(site_data_copy)
    build(site_data_copy, site)
    second = load_manifest(site)
    assert second["generation"] == 2
    changed = {k for k in first["files"] if first["files"][k] != second["files"].get(k)}
    assert "api/model_references/v2/image_generation/model/Deliberate" in changed
    assert "api/model_references/v2/clip" not in changed
    build(site_data_copy, site)
    assert load_manifest(site)["generation"] == 2
    # removing a model is a change as well
    (site_data_copy / "image_generation" / "Deliberate.yaml").unlink()
    build(site_data_copy, site)
    third = load_manifest(site)
    assert third["generation"] == 3
    assert "api/model_references/v2/image_generation/model/Deliberate" not in third["files"]


def test_generation_continues_from_a_given_previous_manifest(site_data_copy: Path, tmp_path: Path) -> None:
    # a CI build starts from an empty directory: passing the deployed manifest keeps the count growing
    deployed = json.dumps({"schema_version": 1, "generation": 41, "built_at": "2020-01-01T00:00:00Z",
                           "source_commit": None, "files": {}}).encode()
    build(site_data_copy, tmp_path / "site", previous_manifest=deployed)
    assert load_manifest(tmp_path / "site")["generation"] == 42


def test_unusable_previous_manifest_restarts_with_a_warning(site_data_copy: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(site_data_copy, site)
    (site / MANIFEST_FILE).write_text("{not json")
    result = build(site_data_copy, site)
    assert any("previous manifest unusable" in w.message for w in result.warnings)
    assert load_manifest(site)["generation"] == 2  # the generation kept beside the site: never backwards


def test_source_date_epoch_and_source_commit(site_data_copy: Path, tmp_path: Path) -> None:
    # outside git: null
    r = run_hmr("build", "--data", str(site_data_copy), "--out", str(tmp_path / "s1"), env={"SOURCE_DATE_EPOCH": "0"})
    assert r.returncode == 0, r.stderr
    m = load_manifest(tmp_path / "s1")
    assert m["source_commit"] is None and m["built_at"] == "1970-01-01T00:00:00Z"
    # inside a git repository: its HEAD
    repo = tmp_path / "repo"
    shutil.copytree(site_data_copy, repo / "data")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "data"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    stamp = subprocess.run([*git, "show", "-s", "--format=%ct", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.strip()
    r = run_hmr("build", "--data", str(repo / "data"), "--out", str(tmp_path / "s2"))
    assert r.returncode == 0, r.stderr
    m = load_manifest(tmp_path / "s2")
    assert m["source_commit"] == head
    assert m["built_at"] == datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # a bad SOURCE_DATE_EPOCH is an error, and nothing is written
    r = run_hmr("build", "--data", str(site_data_copy), "--out", str(tmp_path / "s3"), env={"SOURCE_DATE_EPOCH": "soon"})
    assert r.returncode == 1 and "SOURCE_DATE_EPOCH" in r.stderr
    assert not (tmp_path / "s3").exists()


def test_make_manifest_is_a_pure_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    files = {"api/x.json": b"{}", "legacy/a.csv": b"a,b\r\n", MANIFEST_FILE: b"old"}
    entries = manifest_entries(files)
    assert list(entries) == sorted(entries) == ["api/x", "api/x.json", "legacy/a.csv"]
    first, _ = make_manifest(files, None, None, source_time=0)
    again, _ = make_manifest(files, first, "a" * 40, source_time=999)
    assert again == first  # nothing changed: same generation, time and commit
    changed, _ = make_manifest({**files, "api/x.json": b"[]"}, first, "a" * 40, source_time=60)
    doc = json.loads(changed)
    assert doc["generation"] == 2 and doc["built_at"] == "1970-01-01T00:01:00Z" and doc["source_commit"] == "a" * 40
    # built_at never goes back, even when the source's time does (a build of an older checkout)
    older, _ = make_manifest(files, changed, "b" * 40, source_time=30)
    assert json.loads(older)["built_at"] == "1970-01-01T00:01:00Z" and json.loads(older)["generation"] == 3
    # the source time is only asked for when a new generation needs one
    asked = []
    make_manifest({**files, "api/x.json": b"[]"}, changed, None, source_time=lambda: asked.append(1) or 5.0)
    assert not asked
