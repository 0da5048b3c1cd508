"""`hmr diff`: historical corpus versions (imported, built) against a direct comparison of their legacy
files; git refs built on the fly; renames and security flags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.contrib import diff as d
from tests.helpers import CORPUS, ROOT, run_hmr

Hmr = Callable[..., subprocess.CompletedProcess]

HISTORY = sorted((CORPUS / "legacy" / "history" / "image").iterdir())
#: a spread of versions: big removals (2024-01), many security flags (2024-02), renames upstream (2024-11+)
PICKED = [HISTORY[i] for i in (0, 9, 10, 17, 18, 19)]
SHA = "0123456789abcdef" * 4


def legacy(version: Path) -> dict:
    return json.loads((version / "stable_diffusion.json").read_bytes())


def expected(a: dict, b: dict) -> dict[str, list[str]]:
    """The models that differ, by a direct comparison of the two legacy JSON files."""
    return {"added": [k for k in b if k not in a], "removed": [k for k in a if k not in b],
            "changed": [k for k in b if k in a and a[k] != b[k]]}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    from builder.legacy.importer import import_legacy

    root = tmp_path_factory.mktemp("history")
    out = {}
    for v in PICKED:
        import_legacy(str(v), root / v.name / "data")
        out[v] = root / v.name / "data"
    return out


def test_diff_of_historical_versions_lists_exactly_the_models_that_differ(imported: dict[Path, Path]) -> None:
    snaps = {v: d.snapshot_of_data(data) for v, data in imported.items()}
    pairs = list(zip(PICKED, PICKED[1:], strict=False)) + [(PICKED[0], PICKED[-1])]
    for a, b in pairs:
        result = d.compare(snaps[a], snaps[b])
        assert set(result.categories) <= {"image_generation"}
        cd = result.categories.get("image_generation", d.CategoryDiff())
        got = {"added": [m.key for m in cd.added], "removed": cd.removed, "changed": [m.key for m in cd.changed]}
        assert got == expected(legacy(a), legacy(b)), (a.name, b.name)
        assert not cd.renamed  # legacy files carry no renames map
        # every changed model lists at least one field, and a flipped nsfw is flagged
        la, lb = legacy(a), legacy(b)
        for m in cd.changed:
            assert m.changes
            if bool(la[m.key].get("nsfw")) != bool(lb[m.key].get("nsfw")):
                assert any(f.startswith("nsfw: ") for f in m.flags)
        assert len(d.render(result, "markdown")) <= d.MARKDOWN_LIMIT + 100


def test_diff_cli_between_two_built_historical_sites(imported: dict[Path, Path], tmp_path: Path,
                                                     hmr_in_process: Hmr) -> None:
    a, b = PICKED[-3], PICKED[-2]
    from builder.site.build import build

    sites = []
    for v in (a, b):
        site = tmp_path / v.name
        build(imported[v], site)
        sites.append(site)
    r = run_hmr("diff", str(sites[0]), str(sites[1]), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    cat = doc["categories"]["image_generation"]
    want = expected(legacy(a), legacy(b))
    assert [m["key"] for m in cat["added"]] == want["added"]
    assert cat["removed"] == want["removed"]
    assert [m["key"] for m in cat["changed"]] == want["changed"]
    assert doc["summary"]["added"] == len(want["added"]) and doc["summary"]["changed"] == len(want["changed"])
    # a changed field, checked against the legacy files themselves
    la, lb = legacy(a), legacy(b)
    for m in cat["changed"]:
        for c in m["changes"]:
            if c["field"] in ("description", "version", "nsfw", "baseline") and c["field"] in la[m["key"]]:
                assert c["old"] == la[m["key"]][c["field"]] or c["field"] == "baseline"
                assert c["new"] == lb[m["key"]][c["field"]] or c["field"] == "baseline"
    text = hmr_in_process("diff", str(sites[0]), str(sites[1]))
    assert text.returncode == 0
    assert f"{len(want['added'])} added, {len(want['removed'])} removed" in text.stdout
    assert all(f"  - {k}\n" in text.stdout for k in want["removed"])
    md = hmr_in_process("diff", str(sites[0]), str(sites[1]), "--format", "markdown", "--exit-code")
    assert md.returncode == 1  # --exit-code: the builds differ
    assert md.stdout.startswith("### Model reference changes") and "#### image_generation" in md.stdout
    same = hmr_in_process("diff", str(sites[0]), str(sites[0]), "--exit-code")
    assert same.returncode == 0 and "no model changes" in same.stdout


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_CONFIG_NOSYSTEM": "1"}
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_diff_of_git_refs_with_renames_and_security_flags(tmp_path: Path, hmr_in_process: Hmr) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "data", repo / "data")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "data")
    _git(repo, "commit", "-qm", "base")
    data = repo / "data"
    from builder.contrib import crud

    # the edits through the Python API (the CLI wrappers are covered by test_contrib_crud)
    crud.update_model(data, "image_generation", "Deliberate", [
        ("config.download.0.file_url", "https://files.example.org/Deliberate_v2.safetensors"),
        ("config.download.0.sha256sum", SHA), ("nsfw", True)])
    crud.rename_model(data, "image_generation", "SDXL 1.0", "SDXL Base 1.0")
    crud.add_model(data, "image_generation", "Brand New", {
        "baseline": "stable_diffusion_xl", "nsfw": False,
        "config": {"download": [{"file_name": "brand-new.safetensors", "sha256sum": SHA,
                                 "file_url": "https://mirror.example.net/brand-new.safetensors"}]}})
    crud.remove_model(data, "controlnet", "control_canny")
    _git(repo, "add", "-A", "data")
    _git(repo, "commit", "-qm", "edits")
    before_status = _git(repo, "status", "--porcelain")

    r = run_hmr("diff", "HEAD~1", "HEAD", "--data", str(data), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    img = doc["categories"]["image_generation"]
    assert [m["key"] for m in img["added"]] == ["Brand New"]
    assert img["removed"] == []
    assert [(m["from"], m["to"]) for m in img["renamed"]] == [("SDXL 1.0", "SDXL Base 1.0")]
    renamed_fields = {c["field"] for c in img["renamed"][0]["changes"]}
    assert "name" in renamed_fields and "nsfw" not in renamed_fields
    (changed,) = img["changed"]
    assert changed["key"] == "Deliberate"
    fields = {c["field"]: c for c in changed["changes"]}
    assert fields["nsfw"]["old"] is False and fields["nsfw"]["new"] is True and fields["nsfw"]["security"]
    assert fields["config.download.0.sha256sum"]["new"] == SHA and fields["config.download.0.sha256sum"]["security"]
    assert fields["config.download.0.file_url"]["security"]
    flags = " | ".join(changed["flags"])
    assert "download host files.example.org (was huggingface.co)" in flags
    assert "sha256 of Deliberate_v2.safetensors" in flags and "nsfw: false -> true" in flags
    assert img["added"][0]["flags"] == ["download host mirror.example.net (not used by any model before)"]
    assert doc["categories"]["controlnet"]["removed"] == ["control_canny"]
    assert doc["summary"] == {"added": 1, "removed": 1, "renamed": 1, "changed": 1, "security": 4}

    md = hmr_in_process("diff", "HEAD~1", "HEAD", "--data", str(data), "--format", "markdown")
    assert "> [!WARNING]" in md.stdout and "`image_generation/Deliberate`: nsfw: false -> true" in md.stdout
    assert "| renamed | `SDXL 1.0` → `SDXL Base 1.0` |" in md.stdout
    # a ref against the working tree's data directory; nothing in the repository was touched
    same = hmr_in_process("diff", "HEAD", str(data), "--data", str(data), "--exit-code")
    assert same.returncode == 0, same.stdout + same.stderr
    assert _git(repo, "status", "--porcelain") == before_status
    assert _git(repo, "worktree", "list").count("\n") == 1
    bad = hmr_in_process("diff", "no-such-ref", "HEAD", "--data", str(data))
    assert bad.returncode == 1 and bad.stderr.startswith("error: no-such-ref: neither a directory nor a git ref")
