"""Session fixtures of the site tests, registered by `pytest_plugins = ["tests.site_fixtures"]` in each
tests/test_site_*.py (so the corpus build, the servers and the client venv are made once per run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.site_support import (
    CLIENT_PYTHON,
    CLIENT_VERSION,
    LEGACY_CURRENT,
    Nginx,
    client_venv_dir,
    run_hmr,
)


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
