"""Fixtures of the replica client tests (the corpus site and nginx come from tests/conftest.py).

Most tests drive a real `ReplicaClient` against `sim`, the in-memory CDN of `simulator.py` (the corpus
site at CDN, the corpus legacy files at the GitHub raw base), with a `clock` they move; `replica()`
makes such a client. The end-to-end tests use nginx and the fault-injecting server instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.replica import ReplicaClient
from tests.helpers import ROOT
from tests.replica.simulator import CDN, GITHUB, CdnSimulator, Clock, read_site
from tests.replica_support import FaultServer, MutableSite, files_origin, github_files, proxy_origin
from tests.site_support import Nginx


@pytest.fixture(scope="session")
def site_files(site_dir: Path) -> dict[str, bytes]:
    """Every object key of the corpus site -> its bytes (read once; tests copy it)."""
    return read_site(site_dir)


@pytest.fixture(scope="session")
def legacy_files() -> dict[str, bytes]:
    """The corpus legacy files at the raw GitHub layout (`Haidra-Org/<repo>/refs/heads/main/<file>`)."""
    return github_files()


@pytest.fixture
def sim(site_files: dict[str, bytes], legacy_files: dict[str, bytes]) -> CdnSimulator:
    """The in-memory CDN serving the corpus site, and GitHub serving the corpus legacy files."""
    s = CdnSimulator()
    s.publish_site(CDN, site_files)
    s.publish_files(GITHUB, legacy_files)
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replica(sim: CdnSimulator, clock: Clock, tmp_path: Path) -> Callable[..., ReplicaClient]:
    """`replica(**settings)`: a client on `sim` and `clock`, caching in tmp_path/cache; CDN at CDN/api,
    TTL 60 s, GitHub off unless `github=True`."""

    def make(github: bool = False, home: Path | None = None, **kw: Any) -> ReplicaClient:
        settings: dict[str, Any] = dict(env={}, primary_api_url=CDN + "/api", cache_home=home or tmp_path / "cache",
                                        cache_ttl_seconds=60, timeout=0.5, enable_github_fallback=github,
                                        github_raw_url=GITHUB)
        settings.update(kw)
        return ReplicaClient(fetcher=sim, clock=clock, **settings)

    return make


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
