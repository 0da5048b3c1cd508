"""Fixtures of the message tests: `hmr` run in this process, a copy of the valid fixture data."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import FIXTURES


@pytest.fixture
def hmr() -> Callable[..., subprocess.CompletedProcess]:
    """`hmr ARGS` through click's test runner (stdout and stderr apart), shaped like `run_hmr`'s answer."""
    from click.testing import CliRunner

    from builder.cli import main

    def invoke(*args: str) -> subprocess.CompletedProcess:
        r = CliRunner().invoke(main, list(args))
        return subprocess.CompletedProcess(list(args), r.exit_code, r.stdout, r.stderr)

    return invoke


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/valid (three models: esrgan, image_generation, text_generation)."""
    dest = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", dest)
    return dest
