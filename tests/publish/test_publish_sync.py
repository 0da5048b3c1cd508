"""`hmr sync-legacy` against local bare git repositories (the image and the text legacy repos, seeded with
the corpus's files) and a local stand-in for the GitHub REST calls PyGithub makes for pull requests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.categories import IMAGE_REPO, TEXT_REPO
from builder.publish.legacy_sync import repo_files
from tests.helpers import LEGACY_CURRENT, run_hmr
from tests.publish_support import GIT_ENV, FakeGitHub, Ran, git, git_bytes, hmr_in_process, refs, seed_bare_repo

BRANCH_RE = re.compile(r"^refs/heads/sync/(?P<cat>[a-z_]+|multi)/\d{8}-\d{6}$")
TOKEN = "ghp_test_token_never_printed_0123456789"


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit identity from the environment only (no global git config), no GitHub credentials
    unless a test sets them, no pause between API writes against the local stand-in."""
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("GITHUB_TOKEN", "GH_TOKEN", "HORDE_GITHUB_SYNC_GITHUB_TOKEN", "GITHUB_APP_ID"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HMR_GITHUB_WRITE_INTERVAL", "0")


def seeded(tmp_path: Path, kind: str) -> Path:
    """A bare repo holding the corpus's files of the `kind` legacy repository."""
    files = {name: (LEGACY_CURRENT / name).read_bytes() for name in repo_files(kind)}
    return seed_bare_repo(tmp_path / f"{kind}.git", files)


def sync(site: Path, repo: Path, *extra: str, env: dict[str, str] | None = None) -> Ran:
    return hmr_in_process("sync-legacy", "--site", str(site), "--repo", str(repo), *extra, env=env)


def new_refs(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in after.items() if before.get(k) != v}


@pytest.mark.parametrize("kind", ["image", "text"])
def test_sync_pushes_a_branch_holding_exactly_the_rebuilt_files_then_nothing(
        kind: str, site_two_changes: Path, tmp_path: Path) -> None:
    repo = seeded(tmp_path, kind)
    before = refs(repo)

    dry = sync(site_two_changes, repo, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: would commit on sync/" in dry.stdout
    assert refs(repo) == before  # a dry run changes nothing

    r = sync(site_two_changes, repo)
    assert r.returncode == 0, r.stderr
    pushed = new_refs(before, refs(repo))
    assert len(pushed) == 1, pushed
    branch = next(iter(pushed))
    m = BRANCH_RE.match(branch)
    assert m, branch
    assert refs(repo)["refs/heads/main"] == before["refs/heads/main"]  # never pushed to the base branch
    if kind == "text":
        assert m["cat"] == "text_generation"
        assert re.search(r"models\.csv: 0 added, 0 removed, 1 changed models \(changed: acrastt/Marx-3B-V3\)",
                         r.stdout), r.stdout
        assert "db.json: 0 added, 0 removed, 3 changed models" in r.stdout  # base + aphrodite/ + koboldcpp/
    else:
        assert re.search(r"esrgan\.json: 0 added, 0 removed, 1 changed models \(changed: 4x_AnimeSharp\)",
                         r.stdout), r.stdout
        assert "clip.json" in r.stdout and "layout only" not in r.stdout  # hand-formatted upstream: left alone

    # the branch holds exactly the rebuilt files whose data changed, byte for byte, on top of main
    ref = branch[len("refs/heads/"):]
    kept = next((x for x in r.stdout.splitlines() if x.startswith("left as they were")), "")
    for name in repo_files(kind):
        if name not in kept:
            assert git_bytes("--git-dir", str(repo), "show", f"{ref}:{name}") == \
                (site_two_changes / "legacy" / name).read_bytes(), name
    assert git("--git-dir", str(repo), "rev-parse", f"{ref}^") .strip() == before["refs/heads/main"]
    changed = set(git("--git-dir", str(repo), "diff", "--name-only", "main", ref).split())
    assert "README.md" not in changed and changed <= set(repo_files(kind))

    again = sync(site_two_changes, repo)
    assert again.returncode == 0, again.stderr
    assert "already holds exactly these files; nothing pushed" in again.stdout
    assert refs(repo) == {**before, **pushed}  # a second sync with no change pushes nothing


def test_a_repository_already_in_line_is_left_alone(corpus_site: Path, tmp_path: Path) -> None:
    files = {name: (corpus_site / "legacy" / name).read_bytes() for name in repo_files("image")}
    repo = seed_bare_repo(tmp_path / "image.git", files)
    before = refs(repo)
    r = sync(corpus_site, repo, "--kind", "image")
    assert r.returncode == 0, r.stderr
    assert "up to date with main; nothing to sync" in r.stdout
    assert refs(repo) == before


def test_pull_request_opened_and_the_superseded_one_closed(site_two_changes: Path, tmp_path: Path) -> None:
    repo = seeded(tmp_path, "image")
    # an older sync proposal, still open: its branch exists in the repository
    git("--git-dir", str(repo), "branch", "sync/clip/20250101-000000", "main")
    with FakeGitHub({IMAGE_REPO: repo, TEXT_REPO: tmp_path / "unused"}) as gh:
        old = gh.add_pull(IMAGE_REPO, "sync/clip/20250101-000000")
        unrelated = gh.add_pull(IMAGE_REPO, "feature/new-model", title="someone's own work")
        env = {"GITHUB_TOKEN": TOKEN}
        r = sync(site_two_changes, repo, "--pr", "--github-api-url", gh.base, env=env)
        assert r.returncode == 0, r.stderr
        assert TOKEN not in r.stdout + r.stderr

        created = [p for p in gh.pulls[IMAGE_REPO] if p["number"] not in (old["number"], unrelated["number"])]
        assert len(created) == 1  # one pull request opened
        pr = created[0]
        assert pr["base"]["ref"] == "main" and BRANCH_RE.match("refs/heads/" + pr["head"]["ref"])
        assert f"refs/heads/{pr['head']['ref']}" in refs(repo)
        assert f"opened pull request #{pr['number']}" in r.stdout
        assert old["state"] == "closed" and unrelated["state"] == "open"
        # one comment, on the superseded pull request, pointing at the new one
        assert [(n, body.startswith(f"Superseded by #{pr['number']} ")) for _, n, body in gh.comments] == \
            [(old["number"], True)]
        assert f"closed the superseded pull request #{old['number']}" in r.stdout
        assert {auth for _, _, auth in gh.calls} == {f"token {TOKEN}"}

        # nothing changed since: no push, no new pull request, nothing closed
        before, calls = refs(repo), len(gh.pulls[IMAGE_REPO])
        again = sync(site_two_changes, repo, "--pr", "--github-api-url", gh.base, env=env)
        assert again.returncode == 0, again.stderr
        assert refs(repo) == before and len(gh.pulls[IMAGE_REPO]) == calls
        assert f"kept pull request #{pr['number']}" in again.stdout
        assert gh.open_pulls(IMAGE_REPO) == [unrelated, pr]


def test_pr_without_credentials_is_one_line_and_exit_1(site_two_changes: Path, tmp_path: Path) -> None:
    repo = seeded(tmp_path, "text")
    before = refs(repo)
    # the real entry point, in its own process
    r = run_hmr("sync-legacy", "--site", str(site_two_changes), "--repo", str(repo), "--pr")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "GITHUB_TOKEN" in r.stderr, r.stderr
    assert refs(repo) == before


def test_pull_request_with_github_app_installation_auth(site_two_changes: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    repo = seeded(tmp_path, "text")
    with FakeGitHub({TEXT_REPO: repo}, app_key=key.public_key(), app_id=4242) as gh:
        env = {"GITHUB_APP_ID": "4242", "GITHUB_APP_INSTALLATION_ID": "7",
               "GITHUB_APP_PRIVATE_KEY": pem.replace("\n", "\\n"),  # one line, as CI secrets hold it
               "GITHUB_TOKEN": TOKEN}  # the App wins over a token
        r = sync(site_two_changes, repo, "--pr", "--github-api-url", gh.base, env=env)
        assert r.returncode == 0, r.stderr
        assert len(gh.open_pulls(TEXT_REPO)) == 1
        token_calls = [c for c in gh.calls if c[1] == "/app/installations/7/access_tokens"]
        assert token_calls and token_calls[0][2].startswith("Bearer ")
        assert {auth for _, path, auth in gh.calls if path.startswith("/repos/")} == \
            {f"token {gh.installation_token}"}
        assert gh.installation_token not in r.stdout + r.stderr and "PRIVATE KEY" not in r.stdout + r.stderr
