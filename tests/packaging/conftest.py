"""The package as pip installs it: the wheel built from a copy of the sources, installed into clean
virtual environments (with the `site` extra, and with no extra at all: the client-only install), and
the bundled data built and served by the installed `hmr` from a folder outside the checkout.

Installing takes 10-20 s (the dependencies come from PyPI or pip's cache), so each environment is
kept under `~/.cache/hmr-test-venvs/` keyed by the wheel's sha256 (the wheel is reproducible:
SOURCE_DATE_EPOCH is fixed), the interpreter and the extras: unchanged code reuses it. Every
subprocess runs without PYTHONPATH, so nothing from the checkout can stand in for the installed files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.site_support import free_port, wait_for_port

VENV_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hmr-test-venvs"
#: what a wheel is built from (an sdist holds the same): a missing file fails the build, loudly
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "builder", "horde_model_replica")
#: cached environments unused for this long are removed (others' test runs may be using younger ones)
STALE_SECONDS = 3600
#: a fixed timestamp for the wheel's entries, so the same sources make the same wheel (1980-01-01)
WHEEL_EPOCH = "315532800"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would let the checkout's code or a user site in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def run(cmd: list[str | Path], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """`cmd` with a clean environment, text output; a failure shows its output."""
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


@dataclass(frozen=True)
class Venv:
    """An installed environment: its interpreter and its `hmr` console script."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def hmr(self) -> Path:
        return self.root / "bin" / "hmr"


def _install(wheel: Path, extras: str, kind: str) -> Venv:
    key = hashlib.sha256(wheel.read_bytes() + f"\0{extras}\0{sys.version}\0{sys.executable}".encode())
    root = VENV_CACHE / f"wheel-{kind}-{key.hexdigest()[:16]}"
    done = root / ".installed"
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with open(VENV_CACHE / f"wheel-{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs of the same code make the environment once
        if not done.is_file():
            shutil.rmtree(root, ignore_errors=True)
            run([sys.executable, "-m", "venv", root], cwd=VENV_CACHE)
            pip = [root / "bin" / "python", "-m", "pip", "install", "-q", "--no-input"]
            if kind == "client":  # the package alone, plus only what the client needs
                from tests.packaging.test_extras import CLIENT_REQUIREMENTS

                run([*pip, "--no-deps", wheel], cwd=VENV_CACHE)
                run([*pip, *CLIENT_REQUIREMENTS], cwd=VENV_CACHE)
            else:
                run([*pip, f"{wheel}{extras}"], cwd=VENV_CACHE)
            done.write_text(f"{wheel.name}{extras}\n")
        os.utime(done)
        for old in VENV_CACHE.glob(f"wheel-{kind}-*"):
            marker = old / ".installed"
            if old != root and (not marker.is_file() or time.time() - marker.stat().st_mtime > STALE_SECONDS):
                shutil.rmtree(old, ignore_errors=True)
    return Venv(root)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by pip from a copy of the sources (the checkout gets no build/ or egg-info)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", src], cwd=base,
        SOURCE_DATE_EPOCH=WHEEL_EPOCH)
    (found,) = (base / "dist").glob("*.whl")
    return found


@pytest.fixture(scope="session")
def site_venv(wheel: Path) -> Venv:
    """A clean environment holding the wheel with the `site` extra (validate, build, serve)."""
    return _install(wheel, "[site]", "site")


@pytest.fixture(scope="session")
def client_venv(wheel: Path) -> Venv:
    """A clean environment holding the wheel with only the client's dependencies (`--no-deps` + the
    [tool.hmr-client] list): what a reader of the data installs."""
    return _install(wheel, "", "client")


@dataclass(frozen=True)
class Served:
    """The bundled data, built by the installed package outside the checkout and served by `hmr serve`."""

    work: Path
    site: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def served(site_venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`hmr build` of a copy of data/ in a folder outside the checkout (the working directory too), then
    `hmr serve` on a free port of 127.0.0.1, both by the installed console script."""
    work = tmp_path_factory.mktemp("outside")
    shutil.copytree(ROOT / "data", work / "data")
    run([site_venv.hmr, "build", "--data", "data", "--out", "site"], cwd=work, SOURCE_DATE_EPOCH="1700000000")
    port = free_port()
    proc = subprocess.Popen([str(site_venv.hmr), "serve", "--site", "site", "--port", str(port), "--quiet"],
                            cwd=work, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield Served(work, work / "site", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
