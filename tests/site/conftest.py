"""Fixtures the site tests share (the session-wide corpus site, its servers and the existing client
are in tests/conftest.py, as the replica and publish tests use them too)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def site_data_copy(site_build: Path, tmp_path: Path) -> Path:
    """A copy of the corpus site's data/, free to edit."""
    dest = tmp_path / "data"
    shutil.copytree(site_build / "data", dest)
    return dest
