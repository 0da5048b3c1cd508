"""Adversarial data files (tests/fixtures/adversarial/, written by us): each one is refused with one
`FILE:POINTER: message` line, exit 1, and a build over an existing site leaves it untouched.

Each fixture names, in its first two lines, where it goes inside a copy of tests/fixtures/valid/
(`# target:`) and the `POINTER: message` its error line starts with (`# expect:`); the rest is the file.
"""

from __future__ import annotations

import os
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


# --- the data walk: links and special files refused by name, never read; keys that collide ---

SECRET = "secret_token_do_not_print"


def _outside(tmp_path: Path) -> Path:
    """A folder outside data/ holding a record-shaped file with a secret key name."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "leak.yaml").write_text(f"name: leak\n{SECRET}: 1\n")
    (out / "_category.yaml").write_text(f"{SECRET}: 1\n")
    return out


def _fresh(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    return data


def _refused_quietly(data: Path, line: str, tmp_path: Path, reference_site: Path) -> None:
    assert_refused(data, line, tmp_path, reference_site, timeout=30)
    r = run_hmr("validate", "--data", str(data), timeout=30)
    assert SECRET not in r.stdout + r.stderr


def test_symlinked_category_folder_is_refused_unfollowed(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    (data / "clip").symlink_to(_outside(tmp_path), target_is_directory=True)
    _refused_quietly(data, f"{data / 'clip'}:: category folders must not be symbolic links", tmp_path, reference_site)


def test_symlinked_settings_file_is_refused_unread(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    link = data / "image_generation" / "_category.yaml"
    link.symlink_to(_outside(tmp_path) / "_category.yaml")
    _refused_quietly(data, f"{link}:: settings files must be regular files, not links", tmp_path, reference_site)


def test_symlinked_sub_folder_and_record_are_refused(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    outside = _outside(tmp_path)
    (data / "esrgan" / "org").symlink_to(outside, target_is_directory=True)
    (data / "esrgan" / "leak.yaml").symlink_to(outside / "leak.yaml")
    _refused_quietly(data, f"{data / 'esrgan' / 'org'}:: folders in data/ must not be symbolic links", tmp_path,
                     reference_site)
    r = run_hmr("validate", "--data", str(data), timeout=30)
    assert f"{data / 'esrgan' / 'leak.yaml'}:: data files must not be symbolic links" in r.stderr


def test_fifo_named_like_a_record_is_refused_without_blocking(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    fifo = data / "esrgan" / "Pipe.yaml"
    os.mkfifo(fifo)
    assert_refused(data, f"{fifo}:: not a regular file (not read)", tmp_path, reference_site, timeout=20)


def test_fifo_as_settings_file_is_refused_without_blocking(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    fifo = data / "esrgan" / "_category.yaml"
    os.mkfifo(fifo)
    assert_refused(data, f"{fifo}:: settings files must be regular files", tmp_path, reference_site, timeout=20)


def test_keys_equal_after_normalization_and_case_folding_are_refused(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    nfc, nfd = "Caf\u00e9", "Cafe\u0301"
    (data / "esrgan" / f"{nfc}.yaml").write_text(f"name: {nfc}\n")
    (data / "esrgan" / f"{nfd.upper()}.yaml").write_text(f"name: {nfd.upper()}\n")
    path = data / "esrgan" / f"{nfd.upper()}.yaml"
    assert_refused(data, f"{path}:: key is not in Unicode NFC form", tmp_path, reference_site)
    (data / "esrgan" / f"{nfd.upper()}.yaml").unlink()
    (data / "esrgan" / f"{nfc.upper()}.yaml").write_text(f"name: {nfc.upper()}\n")
    r = run_hmr("validate", "--data", str(data))
    assert r.returncode == 1 and "duplicate key" in r.stderr, r.stderr


def test_key_and_key_dot_json_collide_in_the_route_table(tmp_path: Path, reference_site: Path) -> None:
    data = _fresh(tmp_path)
    (data / "esrgan" / "x.yaml").write_text("name: x\n")
    (data / "esrgan" / "x.json.yaml").write_text("name: x.json\n")
    assert_refused(data, f"{data / 'esrgan' / 'x.json.yaml'}:: key 'x.json' collides with key 'x'", tmp_path,
                   reference_site)


def test_route_table_refuses_a_key_two_files_claim() -> None:
    from builder.errors import DataError
    from builder.routes import routes

    base = "api/model_references/v2/esrgan/model/"
    with pytest.raises(DataError, match="would serve both"):
        routes([base + "x.json", base + "x.json.json"])
