"""The dependency lists say what the code needs: the base install is what the replica client imports,
`[all]` is every extra and `[test]` includes it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

from tests.helpers import ROOT

_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = _PYPROJECT["project"]
#: what a client-only install adds to `pip install --no-deps` of the package
CLIENT_REQUIREMENTS: list[str] = _PYPROJECT["tool"]["hmr-client"]["dependencies"]
NAME = PROJECT["name"]
#: import name -> distribution, where they differ
DISTRIBUTIONS = {"yaml": "pyyaml", "github": "pygithub"}


def requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")


def closure(extra: str) -> set[str]:
    """Distribution names an extra pulls in, its references to this project's other extras followed."""
    out: set[str] = set()
    for req in PROJECT["optional-dependencies"][extra]:
        if requirement_name(req) == NAME:
            for inner in re.search(r"\[(.*)\]", req).group(1).split(","):  # type: ignore[union-attr]
                out |= closure(inner.strip())
        else:
            out.add(requirement_name(req))
    return out


def test_all_is_what_the_package_runs_and_test_includes_every_extra() -> None:
    extras = set(PROJECT["optional-dependencies"]) - {"all", "test"}
    assert {"site", "publish"} <= extras
    assert closure("all") == closure("site") | closure("publish")
    every = set().union(*(closure(e) for e in extras))
    assert closure("test") >= every and {"pytest", "filelock"} <= closure("test")
    assert {"jinja2", "pyyaml", "jsonschema", "fastjsonschema"} <= closure("site")
    assert {"boto3", "pygithub"} <= closure("publish")


def test_the_client_list_is_what_the_replica_client_imports() -> None:
    base = {requirement_name(r) for r in CLIENT_REQUIREMENTS}
    imported: set[str] = set()
    for path in sorted((ROOT / "builder" / "replica").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            imported |= {n.split(".")[0] for n in names}
    third_party = {DISTRIBUTIONS.get(n, n) for n in imported - set(sys.stdlib_module_names) - {"builder"}}
    assert len(third_party) >= 3 and third_party <= base, f"not in the base dependencies: {third_party - base}"
    # nothing of the extras crept into the client's list, and a plain install runs everything
    assert not base & (closure("site") | closure("publish"))
    plain = {requirement_name(r) for r in PROJECT["dependencies"]}
    assert plain >= base | closure("site") | closure("publish")
