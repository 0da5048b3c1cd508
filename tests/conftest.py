"""Shared fixtures: the corpus (read in place, never copied into the repo), the CLI, isolated caches."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CORPUS, FIXTURES, LEGACY_CURRENT, run_hmr, tree_digest  # noqa: F401 - re-exported
from tests.site_support import CLIENT_PYTHON, CLIENT_VERSION, Nginx, client_venv_dir

#: environment variables that steer the package or the existing client: none may leak into a test
ENV_PREFIXES = ("HORDE_", "HMR_", "AIWORKER_")
_SESSION_ENV: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not LEGACY_CURRENT.is_dir():
        raise pytest.UsageError(f"corpus not found at {CORPUS} (set HMR_CORPUS to the corpus folder)")
    # before any fixture runs (session fixtures build sites too): none of the developer's settings, and
    # a record cache of this run only, never the developer's own
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name != "HMR_CORPUS":
            del os.environ[name]
    os.environ["HMR_CACHE_DIR"] = _SESSION_ENV["HMR_CACHE_DIR"] = tempfile.mkdtemp(prefix="hmr-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if "HMR_CACHE_DIR" in _SESSION_ENV:
        shutil.rmtree(_SESSION_ENV["HMR_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test sets in HORDE_*, HMR_*, AIWORKER_* is undone after it, and no test sees another's."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name not in ("HMR_CORPUS", "HMR_CACHE_DIR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HMR_CACHE_DIR", _SESSION_ENV["HMR_CACHE_DIR"])


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


# --- the corpus site built through the CLI, the servers over it, the existing client (site, replica) ---

@pytest.fixture(scope="session")
def site_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`hmr import-legacy` of corpus/legacy/current, then `hmr build`, through the CLI; returns the work dir
    holding data/ and site/ (read-only for tests: copy before changing)."""
    if not LEGACY_CURRENT.is_dir():
        pytest.fail(f"corpus not found at {LEGACY_CURRENT}")
    base = tmp_path_factory.mktemp("site-corpus")
    r = run_hmr("import-legacy", str(LEGACY_CURRENT), "--data", str(base / "data"))
    assert r.returncode == 0, r.stderr
    r = run_hmr("build", "--data", str(base / "data"), "--out", str(base / "site"))
    assert r.returncode == 0, r.stderr
    return base


@pytest.fixture(scope="session")
def site_dir(site_build: Path) -> Path:
    return site_build / "site"


@pytest.fixture(scope="session")
def served(site_dir: Path) -> Iterator[tuple[object, int]]:
    """`builder.site.serve.make_server` over the corpus site, in a thread: (server, port)."""
    from builder.site.serve import make_server

    server = make_server(site_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="hmr-serve", daemon=True)
    thread.start()
    try:
        yield server, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="session")
def nginx(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    server = Nginx(site_dir, tmp_path_factory.mktemp("nginx")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def client_python() -> Path:
    """The python of a venv holding horde-model-reference==8.6.2, made once and cached across runs."""
    from filelock import FileLock

    venv = client_venv_dir()
    py = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock", timeout=900):  # parallel runs share the cache
        if (venv / ".ok").exists() and py.exists():
            return py
        shutil.rmtree(venv, ignore_errors=True)
        env = dict(os.environ, PYENV_VERSION=CLIENT_PYTHON)
        try:
            r = subprocess.run(["python3.12", "-m", "venv", str(venv)], capture_output=True, text=True, env=env,
                               timeout=300)
        except FileNotFoundError:
            pytest.fail("python3.12 not found (pyenv 3.12.1): the existing client needs Python >= 3.12")
        if r.returncode != 0:
            pytest.fail(f"python3.12 -m venv failed: {r.stderr.strip()[-300:]}")
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            f"horde-model-reference=={CLIENT_VERSION}"], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(f"pip install horde-model-reference=={CLIENT_VERSION} failed: {r.stderr.strip()[-300:]}")
        (venv / ".ok").write_text("ok\n")
    return py
