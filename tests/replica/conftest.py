"""Fixtures of the replica client tests (the site fixtures come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replica_support import FaultServer, MutableSite, files_origin, github_files, proxy_origin
from tests.site_support import ROOT, Nginx


@pytest.fixture
def mutable_site(tmp_path: Path) -> Iterator[MutableSite]:
    """The repository's bundled data set (data/), built into a site the test may edit and rebuild: a
    rebuild takes a fraction of a second, where the corpus (tests that only read it) takes seconds."""
    s = MutableSite(ROOT / "data", tmp_path / "mutable")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def github() -> Iterator[FaultServer]:
    """The GitHub raw server over corpus/legacy/current (fault-injectable too)."""
    server = FaultServer(files_origin(github_files())).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def front(nginx: Nginx) -> Iterator[FaultServer]:
    """A fault-injecting server in front of the session nginx (the read-only corpus site)."""
    server = FaultServer(proxy_origin(nginx.port), hang_seconds=2.0).start()
    try:
        yield server
    finally:
        server.stop()
