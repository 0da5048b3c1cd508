"""The CLI over the API: one error line without --debug, the traceback with it, in every command group;
the API module names every command's function and costs nothing to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, run_hmr


def _failing(tmp_path: Path) -> dict[str, list[str]]:
    """A command of each group (core, model, diff) that fails on purpose, and how it fails."""
    data = tmp_path / "data"
    (data / "image_generation").mkdir(parents=True)
    (data / "image_generation" / "Bad.yaml").write_text("name: Bad\nnsfw: maybe\n")
    return {
        "core": ["build", "--data", str(data), "--out", str(tmp_path / "site")],
        "model": ["model", "remove", "image_generation", "No Such Model", "--data", str(FIXTURES / "valid")],
        "diff": ["diff", "no-such-ref", str(FIXTURES / "valid"), "--data", str(FIXTURES / "valid")],
    }


EXPECTED = {
    "core": "error: 2 validation error(s)",
    "model": "error: image_generation/No Such Model does not exist",
    "diff": "error: no-such-ref: ",
}


@pytest.mark.parametrize(("group", "debug_first"), [("core", True), ("model", False), ("diff", False)])
def test_an_error_is_one_line_and_debug_shows_the_traceback(group: str, debug_first: bool, tmp_path: Path) -> None:
    args = _failing(tmp_path)[group]
    plain = run_hmr(*args)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    last = plain.stderr.strip().splitlines()[-1]
    assert last.startswith(EXPECTED[group]), plain.stderr
    assert [line for line in plain.stderr.splitlines() if line.startswith("error: ")] == [last]

    r = run_hmr(*(["--debug", *args] if debug_first else [*args, "--debug"]))  # before or after the command
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr, r.stderr
    assert not [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.stderr.strip().splitlines()[-1].startswith("builder.errors."), r.stderr


def test_debug_still_lists_the_validation_problems(tmp_path: Path) -> None:
    args = _failing(tmp_path)["core"]
    plain, debug = run_hmr(*args), run_hmr(*args, "--debug")
    problems = [line for line in plain.stderr.splitlines() if "Bad.yaml:" in line]
    assert len(problems) == 2  # nsfw and the missing baseline
    assert all(line in debug.stderr.splitlines() for line in problems)


def test_validate_prints_the_report() -> None:
    r = run_hmr("validate", "--data", str(FIXTURES / "valid"))
    assert r.returncode == 0 and r.stdout == "3 models valid (0 warning(s))\n" and r.stderr == ""


def test_every_api_name_resolves_and_is_documented() -> None:
    from builder import api

    assert sorted(api.__all__) == sorted(set(api.__all__)) == dir(api)
    for name in api.__all__:
        value = getattr(api, name)
        assert value.__doc__, name
        assert value.__module__.startswith("builder."), name
    with pytest.raises(AttributeError):
        api.no_such_function  # noqa: B018


def test_importing_the_api_imports_nothing_else() -> None:
    code = "import sys, builder.api; print(sorted(m for m in sys.modules if m.startswith('builder')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "['builder', 'builder.api']"
