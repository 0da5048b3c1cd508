"""The GitHub steps of the workflows against a local stand-in of GitHub's REST API (PyGithub's base URL):
the PR comment is posted once and updated in place; the failure issue is opened once, updated, closed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.errors import FetchError
from tests.contrib_support import FakeGitHub
from tests.helpers import ROOT

TOKEN = "ghs_test_token_not_for_logs"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    f = FakeGitHub().start()
    yield f
    f.stop()


def _env(fake: FakeGitHub) -> dict[str, str]:
    return {**os.environ, "GITHUB_API_URL": fake.base, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": fake.repo}


def gh(fake: FakeGitHub, *args: str, stdin: str | None = None) -> Any:
    """`python -m builder.contrib.github ARGS`, in process (the pipeline test runs the real module)."""
    from click.testing import CliRunner

    from builder.contrib.github import main

    env = {"GITHUB_API_URL": fake.base, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": fake.repo}
    r = CliRunner().invoke(main, list(args), input=stdin, env=env)
    assert TOKEN not in r.stdout + r.stderr
    return r


def test_pr_comment_is_posted_once_and_updated_in_place(fake: FakeGitHub, tmp_path: Path) -> None:
    import shutil

    from builder.contrib import crud

    fake.add_pull(7)
    fake.comments[500] = {"issue": 7, "body": "LGTM (a reviewer's comment)"}
    base, new = tmp_path / "base", tmp_path / "new"
    shutil.copytree(ROOT / "data", base)
    shutil.copytree(ROOT / "data", new)
    crud.update_model(new, "image_generation", "Deliberate", [("nsfw", True)])
    # the workflow's step: hmr diff ... --format markdown | python -m builder.contrib.github comment ...
    step = (f"{shlex.join([sys.executable, '-m', 'builder.cli', 'diff', str(base), str(new), '--format', 'markdown'])}"
            f" | {shlex.join([sys.executable, '-m', 'builder.contrib.github', 'comment', '--pr', '7'])}"
            " --marker model-diff --body-file -")

    def run_step() -> str:
        r = subprocess.run(["bash", "-o", "pipefail", "-c", step], capture_output=True, text=True, env=_env(fake),
                           cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr
        assert TOKEN not in r.stdout + r.stderr
        return r.stdout

    assert run_step().startswith("created #")
    mine = [c for c, v in fake.comments.items() if v["issue"] == 7 and c != 500]
    assert len(mine) == 1
    body = fake.comments[mine[0]]["body"]
    assert body.startswith("<!-- hmr:model-diff -->\n### Model reference changes")
    assert "`image_generation/Deliberate`: nsfw: false -> true" in body

    crud.update_model(new, "image_generation", "SDXL 1.0", [("description", "changed on a second push")])
    assert run_step().startswith(f"updated #{mine[0]}")
    assert [c for c, v in fake.comments.items() if v["issue"] == 7 and c != 500] == mine  # still one comment
    assert "changed on a second push" in fake.comments[mine[0]]["body"]
    assert fake.comments[500]["body"] == "LGTM (a reviewer's comment)"

    assert run_step().startswith(f"unchanged #{mine[0]}")  # same diff: no write at all
    assert fake.writes() == [("POST", f"/repos/{fake.repo}/issues/7/comments"),
                             ("PATCH", f"/repos/{fake.repo}/issues/comments/{mine[0]}")]
    assert {auth for _, _, _, auth in fake.requests} == {f"token {TOKEN}"}


def test_failure_issue_is_opened_once_updated_and_closed(fake: FakeGitHub) -> None:
    fake.add_pull(3)  # pull requests are listed among issues too; never touched
    r = gh(fake, "issue-open", "--marker", "publish-failed", "--title", "Publishing failed", "--label", "publishing",
           "--body", "run 1 failed")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("opened #")
    (number,) = [n for n, i in fake.issues.items() if "pull_request" not in i]
    assert fake.issues[number]["body"] == "<!-- hmr:publish-failed -->\nrun 1 failed"
    assert fake.issues[number]["labels"] == [{"name": "publishing"}]

    r = gh(fake, "issue-open", "--marker", "publish-failed", "--title", "Publishing failed", "--body-file", "-",
           stdin="run 2 failed")
    assert r.stdout.startswith(f"updated #{number}")
    assert [n for n, i in fake.issues.items() if "pull_request" not in i] == [number]
    assert fake.issues[number]["body"].endswith("run 2 failed")

    r = gh(fake, "issue-close", "--marker", "publish-failed", "--comment", "published again")
    assert r.exit_code == 0 and r.stdout.startswith(f"closed #{number}")
    assert fake.issues[number]["state"] == "closed" and fake.issues[3]["state"] == "open"
    assert [v["body"] for v in fake.comments.values() if v["issue"] == number] == ["published again"]
    r = gh(fake, "issue-close", "--marker", "publish-failed")
    assert r.stdout.strip() == "none open"

    # the next failure opens a new issue (the closed one stays closed)
    r = gh(fake, "issue-open", "--marker", "publish-failed", "--title", "Publishing failed", "--body", "again")
    assert r.stdout.startswith("opened #") and not r.stdout.startswith(f"opened #{number} ")


def test_errors_are_one_line_without_the_token(fake: FakeGitHub) -> None:
    r = subprocess.run([sys.executable, "-m", "builder.contrib.github", "comment", "--pr", "404", "--marker", "m",
                        "--body", "x"], capture_output=True, text=True, env=_env(fake), cwd=ROOT, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: GitHub API: HTTP 404: Not Found"
    assert TOKEN not in r.stdout + r.stderr
    # in process: --debug (after the command name too) lets the FetchError through, with its fields
    r = gh(fake, "comment", "--pr", "404", "--marker", "m", "--body", "x", "--debug")
    assert isinstance(r.exception, FetchError) and r.exit_code == 1
    assert (str(r.exception), r.exception.status, r.exception.url) == ("GitHub API: HTTP 404: Not Found", 404, fake.base)
    env = {k: v for k, v in _env(fake).items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    r = subprocess.run([sys.executable, "-m", "builder.contrib.github", "comment", "--pr", "1", "--marker", "m",
                        "--body", "x"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "GITHUB_TOKEN is not set" in r.stderr
