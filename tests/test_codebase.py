"""The shape of the code itself: module size, import circles, one owner of the key layout, docstrings.

These hold the structure issue 9 set up; each names the offending module so a regression is one fix away.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "builder"
MAX_LINES = 450
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every builder module `path` imports, at the top or inside a function (a lazy import still ties
    the two modules together)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    known = {_module_name(p) for p in MODULES}
    return {m for m in out if m in known and m != name}


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_no_import_circle() -> None:
    graph = {_module_name(p): _imports(p) for p in MODULES}
    # a package's __init__ is imported with any of its modules: an edge into a package is an edge into
    # its face only, which is what Python runs
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert circles == []


def _string_constants(tree: ast.AST) -> list[ast.Constant]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_the_key_layout_has_one_owner() -> None:
    """Only builder/routes.py spells where the API trees live; everything else asks it."""
    spelled = []
    for p in MODULES:
        if p == PACKAGE / "routes.py":
            continue
        for node in _string_constants(ast.parse(p.read_text(encoding="utf-8"))):
            if "model_references" in node.value:
                spelled.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert spelled == []


def test_every_public_definition_has_a_docstring() -> None:
    missing = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if child.name.startswith("_"):
                    continue
                if not ast.get_docstring(child):
                    missing.append(f"{where}:{child.lineno} {child.name}")
                if isinstance(child, ast.ClassDef):
                    visit(child, where)

    for p in MODULES:
        visit(ast.parse(p.read_text(encoding="utf-8")), str(p.relative_to(ROOT)))
    assert missing == []


def test_the_package_ships_its_type_marker() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_only_the_shared_helpers_name_the_default_corpus_folder() -> None:
    # the suite and the benchmarks run with the corpus anywhere (HMR_CORPUS): a path to ../shared/corpus
    # written anywhere else would quietly read the workspace's copy instead of the one named
    named = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]):
        if path == ROOT / "tests" / "helpers.py":
            continue
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        if ('"shared"' in code or "shared/corpus" in code) and "HMR_CORPUS" not in code:
            named.append(path.relative_to(ROOT).as_posix())
    assert named == [], f"{named} name ../shared/corpus without HMR_CORPUS: use tests.helpers.CORPUS"
