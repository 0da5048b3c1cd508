"""`hmr sync-legacy` leaves alone a file whose data did not change: a file third parties link to is
not reformatted (upstream's hand-formatted clip.json, blip.json and controlnet.json), and the summary
names the files it left as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.publish.legacy_sync import repo_files, same_data
from tests.helpers import LEGACY_CURRENT
from tests.publish.test_publish_sync import new_refs, sync
from tests.publish_support import GIT_ENV, git, git_bytes, refs, seed_bare_repo


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("GITHUB_TOKEN", "GH_TOKEN", "HORDE_GITHUB_SYNC_GITHUB_TOKEN", "GITHUB_APP_ID"):
        monkeypatch.delenv(k, raising=False)


def test_only_the_files_whose_data_changed_are_synced(site_two_changes: Path, tmp_path: Path) -> None:
    """One esrgan model changed: esrgan.json is synced; the hand-formatted files are kept byte for byte."""
    files = {name: (LEGACY_CURRENT / name).read_bytes() for name in repo_files("image")}
    repo = seed_bare_repo(tmp_path / "image.git", files)
    before = refs(repo)
    r = sync(site_two_changes, repo)
    assert r.returncode == 0, r.stderr
    (branch,) = new_refs(before, refs(repo))
    ref = branch[len("refs/heads/"):]
    changed = set(git("--git-dir", str(repo), "diff", "--name-only", "main", ref).split())
    assert changed == {"esrgan.json"}, changed
    kept = [n for n in ("clip.json", "blip.json", "controlnet.json")
            if (site_two_changes / "legacy" / n).read_bytes() != files[n]]
    assert kept, "the corpus's hand-formatted files differ in layout from the build's"
    for name in kept:
        assert git_bytes("--git-dir", str(repo), "show", f"{ref}:{name}") == files[name]
    line = next(x for x in r.stdout.splitlines() if x.startswith("left as they were"))
    assert all(n in line for n in kept), line
    assert "layout only" not in r.stdout


def test_a_layout_only_difference_pushes_nothing(corpus_site: Path, tmp_path: Path) -> None:
    """The repository's files differ from the build only in indent and final newline: up to date."""
    files = {name: (corpus_site / "legacy" / name).read_bytes() for name in repo_files("image")}
    files["esrgan.json"] = json.dumps(json.loads(files["esrgan.json"]), indent=2).encode()
    repo = seed_bare_repo(tmp_path / "image.git", files)
    before = refs(repo)
    r = sync(corpus_site, repo, "--kind", "image")
    assert r.returncode == 0, r.stderr
    assert "left as they were (data unchanged, layout differs): esrgan.json" in r.stdout
    assert "up to date with main; nothing to sync" in r.stdout
    assert refs(repo) == before


@pytest.mark.parametrize("old,new,same", [
    (b'{"a": 1, "b": 2}', b'{\n\t"a": 1,\n\t"b": 2\n}\n', True),
    (b'{"a": 1, "b": 2}', b'{"b": 2, "a": 1}', False),  # key order is data: the legacy files are ordered
    (b'{"a": 1}', b'{"a": 2}', False),
    (b"not json", b"{}", False),
])
def test_same_data_json(old: bytes, new: bytes, same: bool) -> None:
    assert same_data("x.json", old, new) is same


def test_same_data_csv() -> None:
    assert same_data("models.csv", b"name,x\r\na,1\r\n", b"name,x\na,1")
    assert not same_data("models.csv", b"name,x\r\na,1\r\n", b"name,x\r\na,2\r\n")
