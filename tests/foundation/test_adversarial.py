"""Adversarial data files (tests/fixtures/adversarial/, written by us): each one is refused with one
`FILE:POINTER: message` line, exit 1, and a build over an existing site leaves it untouched.

Each fixture names, in its first two lines, where it goes inside a copy of tests/fixtures/valid/
(`# target:`) and the `POINTER: message` its error line starts with (`# expect:`); the rest is the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_hmr, tree_digest

ADVERSARIAL = FIXTURES / "adversarial"
CASES = sorted(p for p in ADVERSARIAL.iterdir() if p.is_file())


def _case(path: Path) -> tuple[str, str, str]:
    lines = path.read_text().splitlines(keepends=True)
    target = lines[0].removeprefix("# target: ").strip()
    expect = lines[1].removeprefix("# expect: ").rstrip("\n")
    return target, expect, "".join(lines[2:])


@pytest.fixture(scope="module")
def reference_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("adv") / "site"
    r = run_hmr("build", "--data", str(FIXTURES / "valid"), "--out", str(site))
    assert r.returncode == 0, r.stderr
    return site


def assert_refused(data: Path, expected_line: str, tmp_path: Path, reference_site: Path, timeout: float = 60) -> None:
    """`hmr validate` and `hmr build` over `data` both exit 1 with one error line starting with
    `expected_line`, no traceback, and the build leaves an existing site as it was."""
    r = run_hmr("validate", "--data", str(data), timeout=timeout)
    lines = r.stderr.splitlines()
    assert r.returncode == 1, (r.returncode, lines[-5:])
    assert any(line.startswith(expected_line) for line in lines), (expected_line, lines)
    assert "Traceback" not in r.stderr
    assert all(len(line) < 400 for line in lines), [line[:200] for line in lines]
    site = tmp_path / "site"
    shutil.copytree(reference_site, site, symlinks=True)
    before = tree_digest(site)
    r = run_hmr("build", "--data", str(data), "--out", str(site), timeout=timeout)
    assert r.returncode == 1, r.stderr[-500:]
    assert any(line.startswith(expected_line) for line in r.stderr.splitlines()), (expected_line, r.stderr[-500:])
    assert "Traceback" not in r.stderr
    assert tree_digest(site) == before


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_adversarial_file_is_refused_in_one_line(case: Path, tmp_path: Path, reference_site: Path) -> None:
    target, expect, content = _case(case)
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    dest = data / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(content)
    assert_refused(data, f"{dest}:{expect}", tmp_path, reference_site)


def test_oversized_file_is_refused_unread(tmp_path: Path, reference_site: Path) -> None:
    from builder.dataparse import MAX_FILE_BYTES

    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    dest = data / "esrgan" / "Huge.yaml"
    dest.write_text("name: Huge\ndescription: '" + "x" * MAX_FILE_BYTES + "'\n")
    assert_refused(data, f"{dest}:: file is over the 1 MiB limit of a data file", tmp_path, reference_site)
