"""Negative fixtures: each broken file yields its expected error line, exit 1, and no site change.

Each file in tests/fixtures/invalid/ names, in its first two lines, where it goes inside a copy of
tests/fixtures/valid/ (`# target:`) and the `POINTER: message` the error line must contain (`# expect:`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_hmr, tree_digest

CASES = sorted((FIXTURES / "invalid").iterdir())


def _case(path: Path) -> tuple[str, str, str]:
    lines = path.read_text().splitlines(keepends=True)
    target = lines[0].removeprefix("# target: ").strip().replace("{BEL}", "\x07")
    expect = lines[1].removeprefix("# expect: ").rstrip("\n")
    return target, expect, "".join(lines[2:])


def test_there_are_enough_negative_fixtures() -> None:
    assert len(CASES) >= 15


def test_valid_fixture_is_valid() -> None:
    r = run_hmr("validate", "--data", str(FIXTURES / "valid"))
    assert r.returncode == 0, r.stderr
    assert "3 models valid" in r.stdout


@pytest.fixture(scope="module")
def reference_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("neg") / "site"
    r = run_hmr("build", "--data", str(FIXTURES / "valid"), "--out", str(site))
    assert r.returncode == 0, r.stderr
    return site


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_broken_file_is_reported_and_build_writes_nothing(case: Path, tmp_path: Path, reference_site: Path) -> None:
    target, expect, content = _case(case)
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    dest = data / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(content)

    r = run_hmr("validate", "--data", str(data))
    assert r.returncode == 1
    expected_line = f"{dest}:{expect}"
    lines = r.stderr.splitlines()
    assert any(line.startswith(expected_line) for line in lines), (expected_line, lines)
    assert all(":" in line for line in lines)  # one line per problem, no traceback
    assert "Traceback" not in r.stderr

    site = tmp_path / "site"
    shutil.copytree(reference_site, site)
    before = tree_digest(site)
    r = run_hmr("build", "--data", str(data), "--out", str(site))
    assert r.returncode == 1
    assert any(line.startswith(expected_line) for line in r.stderr.splitlines())
    assert tree_digest(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "site"]  # no half-written tree


def test_every_problem_of_every_file_in_one_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    expected = []
    for case in CASES:
        target, expect, content = _case(case)
        if case.stem in ("case_duplicate", "duplicate_name"):
            continue  # their error depends on which sibling is read first
        dest = data / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(content)
        expected.append(f"{dest}:{expect}")
    r = run_hmr("validate", "--data", str(data))
    assert r.returncode == 1
    for e in expected:
        assert any(line.startswith(e) for line in r.stderr.splitlines()), e


def test_a_file_with_several_errors_reports_all(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "image_generation").mkdir(parents=True)
    (data / "image_generation" / "Many.yaml").write_text(
        "name: Many\nbaseline: sd9\nnsfw: 1\nstyle: weird\nhomepage: http://x\n"
        "config:\n  download:\n  - file_name: a\n    file_url: http://x/a\n    sha256sum: zz\n")
    r = run_hmr("validate", "--data", str(data))
    pointers = {line.split(":", 2)[1] for line in r.stderr.splitlines() if line.startswith(str(data))}
    assert {"/baseline", "/nsfw", "/style", "/homepage", "/config/download/0/file_url",
            "/config/download/0/sha256sum"} <= pointers


def _legacy_dir(tmp_path: Path, records: dict) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "esrgan.json").write_text(json.dumps(records))
    return src


@pytest.mark.parametrize("key", ["../../evil", "a/../../b", "/abs", "a//b", "x\\y", "ctl\x01"])
def test_import_keeps_unsafe_keys_inside_their_folder(key: str, tmp_path: Path) -> None:
    """Issue 10: no key is refused; an unsafe one gets an encoded file name inside its folder."""
    src = _legacy_dir(tmp_path, {key: {"name": key, "config": {"files": [], "download": []}}})
    data = tmp_path / "data"
    r = run_hmr("import-legacy", str(src), "--data", str(data))
    assert r.returncode == 0, r.stderr
    files = [p for p in (data / "esrgan").iterdir() if p.name != "_category.yaml"]
    assert len(files) == 1 and files[0].name.startswith("_~")
    assert not (tmp_path / "evil.yaml").exists()
    from builder.records import load

    assert list(load(data)[0]["esrgan"].records) == [key]


@pytest.mark.parametrize(("broken", "expected"), [
    ({"esrgan.json": "{"}, "error: esrgan.json: not valid JSON ("),
    ({}, "error: stable_diffusion.json: x: /baseline: expected a string, got a number"),
], ids=["malformed-json", "unconvertible-record"])
def test_import_of_malformed_legacy_file_writes_nothing(broken: dict[str, str], expected: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "stable_diffusion.json").write_text('{"x": {"name": "x", "baseline": 5}}')
    for name, content in broken.items():  # categories convert in upstream order: esrgan before stable_diffusion
        (src / name).write_text(content)
    r = run_hmr("import-legacy", str(src), "--data", str(tmp_path / "data"))
    assert r.returncode == 1
    assert r.stderr.startswith(expected), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    r = run_hmr("validate", "--data", str(tmp_path / "nope"))
    assert (r.returncode, r.stderr) == (1, f"error: data directory not found: {tmp_path / 'nope'} "
                                           "(run from the repository root or pass --data DIR)\n")
