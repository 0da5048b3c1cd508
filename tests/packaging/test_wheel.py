"""The wheel holds everything a build reads, and the installed package builds and serves the bundled
data from a folder outside the checkout exactly as the checkout's code does."""

from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path

from builder.routes import HOME_PAGE, v2_file, v2_key
from tests.helpers import ROOT, run_hmr
from tests.packaging.conftest import Served, Venv, run
from tests.site_support import Http

PACKAGE_DATA = ROOT / "builder" / "site"


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under `root`."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_wheel_holds_the_templates_assets_and_schemas(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for folder in ("templates", "schemas"):
            files = [p for p in (PACKAGE_DATA / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            assert len(files) >= 6, folder
            for p in files:
                name = p.relative_to(ROOT).as_posix()
                assert name in names, f"{name} is not in the wheel"
                assert z.read(name) == p.read_bytes()
    assert "builder/py.typed" in names and "horde_model_replica/py.typed" in names
    # nothing outside the two packages (the client's public name, ADR 0006): no top-level templates/ or
    # schemas/, no tests
    top = {n.split("/")[0] for n in names}
    assert len(top) == 3 and {"builder", "horde_model_replica"} <= top and [t for t in top if t.endswith(".dist-info")], top


def test_the_installed_package_builds_outside_the_checkout_as_the_checkout_does(served: Served,
                                                                               site_venv: Venv) -> None:
    where = run([site_venv.python, "-c", "import builder; print(builder.__file__)"], cwd=served.work).stdout
    assert Path(where.strip()).is_relative_to(site_venv.root), "the build did not use the installed package"
    built = tree(served.site)
    assert HOME_PAGE in built and v2_file("image_generation") in built and "assets/site.css" in built
    # the checkout's code, same data, same folder, same time: byte for byte the same site
    r = run_hmr("build", "--data", "data", "--out", "site-checkout", cwd=served.work,
                env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0, r.stderr
    expected = tree(served.work / "site-checkout")
    assert sorted(built) == sorted(expected)
    assert [k for k in built if built[k] != expected[k]] == []


def test_hmr_serve_of_the_installed_package_answers_pages_and_json(served: Served) -> None:
    http = Http(served.port)
    try:
        home = http.request("/")
        assert home.status == 200 and home.headers["content-type"].startswith("text/html")
        assert home.body == (served.site / HOME_PAGE).read_bytes()
        css = http.request("/assets/site.css")
        assert css.status == 200 and css.body == (PACKAGE_DATA / "templates" / "assets" / "site.css").read_bytes()
        v2 = http.get_key(v2_key("image_generation"))
        assert v2.status == 200 and v2.headers["content-type"].startswith("application/json")
        assert v2.body == (served.site / v2_file("image_generation")).read_bytes()
        assert "Deliberate" in json.loads(v2.body)
    finally:
        http.close()


def test_hmr_version_and_V_print_the_installed_version(site_venv: Venv, tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    metadata = run([site_venv.python, "-c", "import importlib.metadata as m; "
                    "print(m.version('horde-model-reference-site'))"], cwd=tmp_path).stdout.strip()
    assert metadata == version
    for flag in ("--version", "-V"):
        assert run([site_venv.hmr, flag], cwd=tmp_path).stdout == f"hmr {version}\n"
    import builder

    assert builder.__version__ == version, "builder.__version__ and pyproject.toml disagree"


def test_shell_completion_of_the_installed_script_knows_the_lazy_commands(site_venv: Venv, tmp_path: Path) -> None:
    # click's completion, as the docs describe it: `eval "$(_HMR_COMPLETE=bash_source hmr)"`
    script = run([site_venv.hmr], cwd=tmp_path, _HMR_COMPLETE="bash_source").stdout
    assert "complete -o nosort -F _hmr_completion hmr" in script

    def complete(words: str) -> list[str]:
        out = run([site_venv.hmr], cwd=tmp_path, _HMR_COMPLETE="bash_complete", COMP_WORDS=words,
                  COMP_CWORD=str(len(words.split(" ")) - 1)).stdout
        return [line.split(",", 1)[1] for line in out.splitlines()]

    assert complete("hmr mo") == ["model"]  # a lazy command (builder.contrib)
    assert {"add", "update", "remove", "rename"} <= set(complete("hmr model "))
    assert {"--data", "--out"} <= set(complete("hmr build --"))
