"""Shared fixtures: the corpus (read in place, never copied into the repo), the CLI, isolated caches."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
LEGACY_CURRENT = CORPUS / "legacy" / "current"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HMR = [sys.executable, "-m", "builder.cli"]


def pytest_configure(config: pytest.Config) -> None:
    if not LEGACY_CURRENT.is_dir():
        raise pytest.UsageError(f"corpus not found at {CORPUS}: the tests read ../shared/corpus")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # the build's record cache must not leak between the suite and the developer's machine
    os.environ["HMR_CACHE_DIR"] = str(tmp_path_factory.mktemp("hmr-cache"))


def run_hmr(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([*HMR, *args], capture_output=True, text=True, env=e, cwd=cwd or ROOT, timeout=300)


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root)}|{st.st_mtime_ns}|{st.st_ino}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def corpus_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`data/` imported from legacy/current (read-only for tests: copy it before editing)."""
    from builder.legacy.importer import import_legacy

    data = tmp_path_factory.mktemp("corpus") / "data"
    import_legacy(str(LEGACY_CURRENT), data)
    return data


@pytest.fixture(scope="session")
def corpus_site(corpus_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from `corpus_data` (read-only for tests)."""
    from builder.site.build import build

    site = tmp_path_factory.mktemp("corpus-site") / "site"
    build(corpus_data, site)
    return site


@pytest.fixture
def data_copy(corpus_data: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "data"
    shutil.copytree(corpus_data, dest)
    return dest
