"""The build pipeline's own contracts: the disk memo is keyed by the package's code (an edited module
can never be answered from the memo), the v2 records the stages share are the published bytes, and
the source facts (git, SOURCE_DATE_EPOCH, mtimes) are read once, by one module."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from builder import memo
from builder.categories import CATEGORIES
from builder.errors import ConfigError
from builder.load import load_valid
from builder.routes import v2_file
from builder.site import outputs
from builder.site.source import parse_source_date_epoch, source_facts
from tests.site_support import ROOT, run_hmr

BUNDLED = ROOT / "data"


@pytest.fixture(scope="module")
def code_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package (its templates and schemas are package data): a source checkout that tests may edit."""
    root = tmp_path_factory.mktemp("code")
    shutil.copytree(ROOT / "builder", root / "builder", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_fingerprint_covers_every_module_and_template(code_copy: Path) -> None:
    package, templates = code_copy / "builder", code_copy / "builder" / "site" / "templates"
    assert memo.code_fingerprint() == memo.fingerprint_of(memo.PACKAGE_DIR, memo.TEMPLATES_DIR)
    assert memo.fingerprint_of(package, templates) == memo.code_fingerprint()  # a faithful copy
    base = memo.fingerprint_of(package, templates)
    sources = sorted(package.rglob("*.py")) + sorted(p for p in templates.rglob("*") if p.is_file())
    assert len(sources) > 60 and package / "v2.py" in sources and package / "site" / "outputs.py" in sources
    for p in sources:
        original = p.read_bytes()
        p.write_bytes(original + b"\n")
        try:
            assert memo.fingerprint_of(package, templates) != base, f"editing {p.relative_to(code_copy)} " \
                                                                    "does not change the memo's key"
        finally:
            p.write_bytes(original)
    assert memo.fingerprint_of(package, templates) == base
    # what Python writes as it runs, and files beside the code, do not move it
    extra = [package / "__pycache__" / "memo.cpython-311.pyc", package / "notes.txt"]
    extra[0].parent.mkdir(exist_ok=True)
    for p in extra:
        p.write_bytes(b"not source")
    try:
        assert memo.fingerprint_of(package, templates) == base
    finally:
        for p in extra:
            p.unlink()


def test_an_edited_module_is_never_answered_from_the_memo(code_copy: Path, tmp_path: Path) -> None:
    # builder/v2.py decides every v2 byte; the hand-kept module list of the old memo key left it out
    data, site = tmp_path / "data", tmp_path / "site"
    shutil.copytree(BUNDLED, data)
    env = {"PYTHONPATH": str(code_copy), "HMR_CACHE_DIR": str(tmp_path / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    r = run_hmr("build", "--data", str(data), "--out", str(site), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = (site / v2_file("clip")).read_bytes()
    assert b"memo_check" not in before and (tmp_path / "cache" / memo.MEMO_DIR / "compiled.bin").is_file()
    v2_module = code_copy / "builder" / "v2.py"
    original = v2_module.read_text()
    edited = original.replace('out: dict[str, Any] = {"record_type": cat.name, "name": data["name"]}',
                              'out: dict[str, Any] = {"record_type": cat.name, "name": data["name"], "memo_check": 1}')
    assert edited != original
    v2_module.write_text(edited)
    try:
        r = run_hmr("build", "--data", str(data), "--out", str(site), env=env, cwd=tmp_path)
    finally:
        v2_module.write_text(original)
    assert r.returncode == 0, r.stderr
    after = orjson.loads((site / v2_file("clip")).read_bytes())
    assert after and all(rec["memo_check"] == 1 for rec in after.values())


def test_the_shared_v2_records_are_the_published_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HMR_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(BUNDLED, data)
    cats, _ = load_valid(data)
    v2 = outputs.v2_records(cats)
    assert list(v2) == [c.name for c in CATEGORIES]
    cold = outputs.compiled_files(cats, v2)

    def no_compiling(*args: object) -> dict[str, bytes]:
        raise AssertionError("unchanged data was compiled again")

    # the second build of the same data takes the bytes from the memo, and the records the later
    # stages read (v2, built from the records, never parsed from those bytes) agree with them
    monkeypatch.setattr(outputs, "compile_outputs", no_compiling)
    warm = outputs.compiled_files(cats, outputs.v2_records(cats))
    assert warm == cold
    for c in CATEGORIES:
        assert warm[v2_file(c.name)] == orjson.dumps(v2[c.name]), c.name


def test_memo_slots_stay_one_per_name_and_damage_only_costs_time(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HMR_CACHE_DIR", str(tmp_path))
    made: list[bytes] = []

    def make(value: bytes) -> bytes:
        made.append(value)
        return value

    assert memo.memoized("t", [b"a"], lambda: make(b"one")) == b"one"
    assert memo.memoized("t", [b"a"], lambda: make(b"other")) == b"one" and made == [b"one"]
    assert memo.memoized("t", [b"b"], lambda: make(b"two")) == b"two"  # other inputs: made again
    assert sorted(p.name for p in (tmp_path / memo.MEMO_DIR).iterdir()) == ["t.bin"]
    files = {"a/b.json": b"{}", "c": b"\x00\n\xff"}
    assert memo.memoized_files("f", [b"x"], lambda: files) == files
    assert memo.memoized_files("f", [b"x"], dict) == files
    (tmp_path / memo.MEMO_DIR / "f.bin").write_bytes((tmp_path / memo.MEMO_DIR / "f.bin").read_bytes()[:-1])
    assert memo.memoized_files("f", [b"x"], lambda: files) == files  # damaged: made again
    table = memo.MemoTable("tab")
    table.put("k", {"v": 1})
    table.save()
    assert memo.MemoTable("tab").get("k") == {"v": 1}
    path = tmp_path / memo.MEMO_DIR / "tab.json"
    path.write_bytes(b"another fingerprint\n" + path.read_bytes().split(b"\n", 1)[1])
    assert memo.MemoTable("tab").get("k") is None  # written by other code: not read
    monkeypatch.setenv("HMR_NO_CACHE", "1")
    assert memo.memoized("t", [b"a"], lambda: make(b"three")) == b"three"


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid", GIT_AUTHOR_DATE="@1650000000 +0000",
               GIT_COMMITTER_DATE="@1650000000 +0000")
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_source_facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "plain" / "data"
    shutil.copytree(BUNDLED, data)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    newest = max(p.stat().st_mtime for p in [data, *data.rglob("*")])
    facts = source_facts(data)
    assert facts.commit is None and facts.commit_time is None and facts.source_date_epoch is None
    assert facts.seen_mtime == newest and facts.source_time() == newest  # one walk served both
    assert facts.category_times["lora"].last_updated == min(t.initialization_time for t in
                                                             facts.category_times.values())
    # SOURCE_DATE_EPOCH dates every category outside git, and the mtimes are not walked for it
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    facts = source_facts(data)
    assert facts.source_date_epoch == 1_700_000_000 and facts.seen_mtime is None
    assert {t.last_updated for t in facts.category_times.values()} == {1_700_000_000}
    assert facts.source_time() == newest  # asked for anyway: the walk happens then
    for bad in ("soon", "1.5", "99999999999999999999"):
        with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
            parse_source_date_epoch(bad)
    assert parse_source_date_epoch("") is None and parse_source_date_epoch("0") == 0
    # in git: the commit and its time, and the categories' times from the history
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    repo = tmp_path / "repo"
    shutil.copytree(BUNDLED, repo / "data")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    facts = source_facts(repo / "data")
    assert facts.commit == git(repo, "rev-parse", "HEAD") and facts.commit_time == 1_650_000_000
    assert facts.source_time() == 1_650_000_000.0 and facts.seen_mtime is None
    assert facts.category_times["clip"] == (1_650_000_000, 1_650_000_000)


def test_a_given_manifest_alone_is_no_previous_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a CI build into an empty folder continues the deployed generation, but has nothing to diff
    # against: no change entry claiming that every model was added
    from builder.routes import CHANGES_FILE, MANIFEST_FILE
    from builder.site.build import build

    monkeypatch.setenv("HMR_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(BUNDLED, data)
    build(data, tmp_path / "first")
    deployed = (tmp_path / "first" / MANIFEST_FILE).read_bytes()
    record = data / "image_generation" / "Deliberate.yaml"
    record.write_text(record.read_text().replace("version: '2'", "version: '2.1'"))
    result = build(data, tmp_path / "ci", previous_manifest=deployed)
    assert orjson.loads(result.files[CHANGES_FILE])["history"] == []
    assert orjson.loads(result.files[MANIFEST_FILE])["generation"] == 2
