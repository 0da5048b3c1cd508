"""Fixtures of the contributor-workflow tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest


@pytest.fixture
def hmr_in_process() -> Callable[..., subprocess.CompletedProcess]:
    """`hmr ARGS` run in this process through click's test runner (much faster than `run_hmr`, which
    each test still uses at least once for the installed command); returns what `run_hmr` returns."""
    from click.testing import CliRunner

    from builder.cli import main

    def invoke(*args: str) -> subprocess.CompletedProcess:
        r = CliRunner().invoke(main, list(args))
        return subprocess.CompletedProcess(list(args), r.exit_code, r.stdout, r.stderr)

    return invoke
