"""The client's parts on their own: the fetcher contract (one error type, conditional requests, size cap)
with the simulator and with the real httpx transport against a local server; the trust rules; the typed
state (tolerant of old and damaged files); and what importing the client costs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from builder.replica import thaw
from builder.replica.errors import (
    DigestMismatch,
    DocumentError,
    FetchError,
    FetchFailed,
    ManifestError,
    RollbackError,
    ShrinkRefused,
    TrustError,
)
from builder.replica.fetcher import FetcherInterface, HttpxFetcher, Response, Validators
from builder.replica.state import Copy, Served, SourceState, State
from builder.replica.trust import Entry, check_count, check_digest, check_rollback, parse_document, parse_manifest
from builder.routes import MANIFEST_FILE, v2_key
from tests.helpers import ROOT
from tests.replica.simulator import CDN, CdnSimulator
from tests.replica_support import FaultServer, dead_url, files_origin

# ---------------------------------------------------------------------------------------------------
# the fetcher contract


class Raising(FetcherInterface):
    """A transport of someone else's that fails in its own way."""

    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def _fetch(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        raise self.error


@pytest.mark.parametrize("error", [ValueError("bad"), KeyError("k"), OSError(5, "I/O error"),
                                   FetchError("gone", "http://x/", 410)])
def test_any_transport_failure_becomes_fetch_failed(error: Exception) -> None:
    with pytest.raises(FetchFailed) as e:
        Raising(error).fetch("http://x/y", 1.0)
    assert e.value.url.startswith("http://x/") and e.value.__cause__ is error
    assert e.value.status == (410 if isinstance(error, FetchError) else None)


def test_statuses_validators_and_the_size_cap(sim: CdnSimulator) -> None:
    url = f"{CDN}/{MANIFEST_FILE}"
    r = sim.fetch(url, 1.0)
    assert r.status == 200 and r.validators.etag and not r.not_modified
    assert sim.fetch(url, 1.0, r.validators).not_modified  # conditional: 304 with no body
    assert sim.fetches[-1].conditional and sim.fetch(url, 1.0, Validators()).status == 200  # empty: not conditional
    assert Validators("e", "d").headers() == {"If-None-Match": "e", "If-Modified-Since": "d"}
    sim.fail(url, 503, retry_after="120")
    with pytest.raises(FetchFailed) as e:
        sim.fetch(url, 1.0)
    assert (e.value.status, e.value.retry_after, e.value.unhealthy, str(e.value)) == (503, 120.0, True, "HTTP 503")
    sim.fail(url, 404)
    with pytest.raises(FetchFailed) as e:
        sim.fetch(url, 1.0)
    assert (e.value.status, e.value.unhealthy) == (404, False)
    sim.heal()
    sim.max_bytes = 100
    with pytest.raises(FetchFailed, match="larger than 100 bytes") as e:
        sim.fetch(url, 1.0)
    assert e.value.status is None and e.value.unhealthy
    assert sim.requests == 6 and sim.body_bytes > 0


def test_the_httpx_fetcher_against_a_real_server(tmp_path: Path) -> None:
    server = FaultServer(files_origin({"/doc.json": b'{"a": {}}' * 100})).start()
    fetcher = HttpxFetcher(max_bytes=10_000)
    try:
        url = f"{server.base}/doc.json"
        r = fetcher.fetch(url, 2.0)
        assert r.status == 200 and r.body == b'{"a": {}}' * 100 and r.validators.etag
        assert fetcher.fetch(url, 2.0, r.validators).not_modified
        deadline = time.monotonic() + 2  # the server logs an answer after sending it: a loaded machine lags
        while len(server.log) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [(e.status, e.body_bytes) for e in server.log] == [(200, 900), (304, 0)]
        with pytest.raises(FetchFailed) as e:
            fetcher.fetch(f"{server.base}/missing", 2.0)
        assert e.value.status == 404 and e.value.url == f"{server.base}/missing"
        server.faults["/doc.json"] = "hang"
        with pytest.raises(FetchFailed, match=r"timed out after 0\.3s") as e:
            fetcher.fetch(url, 0.3)
        assert e.value.status is None
        server.faults["/doc.json"] = "drip"  # every read arrives in time: the whole-body deadline ends it
        t = time.monotonic()
        with pytest.raises(FetchFailed, match="body still arriving"):
            fetcher.fetch(url, 0.3)
        assert time.monotonic() - t < 1.5
        server.faults["/doc.json"] = "truncate"
        with pytest.raises(FetchFailed, match="truncated or malformed"):
            fetcher.fetch(url, 2.0)
        server.faults["/doc.json"] = b"x" * 20_000
        with pytest.raises(FetchFailed, match="larger than 10000 bytes"):
            fetcher.fetch(url, 2.0)
        with pytest.raises(FetchFailed, match="connection failed") as e:
            fetcher.fetch(dead_url() + "/x", 2.0)
        assert e.value.unhealthy
    finally:
        fetcher.close()
        server.stop()


# ---------------------------------------------------------------------------------------------------
# trust rules: bytes in, verdicts out


def test_trust_rules() -> None:
    body = b'{"a": {"name": "a"}}'
    import hashlib

    entry = Entry(hashlib.sha256(body).hexdigest(), len(body))
    check_digest(body, entry)
    with pytest.raises(DigestMismatch, match=f"size 3 differs from the manifest's {len(body)}"):
        check_digest(b"{} ", entry)
    with pytest.raises(DigestMismatch, match="sha256"):
        check_digest(body.replace(b"a", b"b"), entry)
    assert parse_document(body) == {"a": {"name": "a"}}
    for bad, why in ((b"<html>", "an HTML page"), (b"[]", "not a JSON object"), (b'{"a": 1}', "not an object")):
        with pytest.raises(DocumentError, match=why):
            parse_document(bad)
    m = parse_manifest(json.dumps({"generation": 3, "files": {"k": {"sha256": entry.sha256, "bytes": 5}}}).encode())
    assert (m.generation, m.files["k"].sha256, m.files["k"].bytes, m.source_commit) == (3, entry.sha256, 5, None)
    check_rollback(m, 3)
    check_rollback(m, None)
    with pytest.raises(RollbackError) as e:
        check_rollback(m, 4)
    assert (e.value.generation, e.value.accepted) == (3, 4) and isinstance(e.value, TrustError)
    for bad in (b"{}", b'{"files": {}, "generation": 0}', b'{"files": [], "generation": true}'):
        with pytest.raises(ManifestError):
            parse_manifest(bad)
    # an entry is checked when it is read (a client reads a few of thousands): a bad one refuses then
    m = parse_manifest(b'{"files": {"k": {"sha256": "x", "bytes": 1}, "ok": {"sha256": "' + b"a" * 64
                       + b'", "bytes": 1}}, "generation": 1}')
    assert "k" in m.files and len(m.files) == 2 and m.files["ok"].bytes == 1
    with pytest.raises(ManifestError, match="manifest entry 'k' has no valid sha256/bytes"):
        m.files["k"]
    check_count(50, 100, 0.5)
    check_count(0, 100, 0.0)  # ratio 0 disables the check
    with pytest.raises(ShrinkRefused, match="49 models where the cached copy has 100"):
        check_count(49, 100, 0.5)
    with pytest.raises(ShrinkRefused, match="x.json holds no model"):
        check_count(0, None, 0.5, what="x.json")


# ---------------------------------------------------------------------------------------------------
# the typed state


def test_state_round_trips_and_keeps_its_layout() -> None:
    state = State(generation=4)
    state.source("https://cdn.test/api", "cdn").trip(100.0, 60.0, "HTTP 503")
    state.site["v2/clip"] = Copy("a" * 64, 3, "https://cdn.test/x", "cdn", 5.0, bytes=10, generation=4)
    state.served["v2/clip"] = Served("cdn", 6.0, 6.0, None, "site", "a" * 64, 3, "https://cdn.test/x")
    again = State.from_json(state.to_json())
    assert again.to_json() == state.to_json() and isinstance(again.site["v2/clip"], Copy)
    doc = json.loads(state.to_json())
    assert doc["version"] == 1 and doc["sources"]["https://cdn.test/api"]["breaker_until"] == 160.0
    assert set(doc) == {"version", "generation", "floor_until", "manifest", "sources", "site", "github", "served",
                        "last_refresh"}
    src = again.sources["https://cdn.test/api"]
    assert src.circuit_open(159.0) and not src.circuit_open(160.0) and src.failures == 1
    src.succeeded(170.0)
    assert (src.failures, src.last_error, src.breaker_until, src.last_ok) == (0, None, 0.0, 170.0)


@pytest.mark.parametrize("raw", [None, b"", b"not json", b"[]", b'{"version": 0}', b'{"version": 2, "site": {}}'])
def test_an_unusable_state_file_is_an_empty_state(raw: bytes | None) -> None:
    assert State.from_json(raw).to_json() == State().to_json()


def test_bad_entries_are_dropped_not_fatal() -> None:
    doc = {"version": 1, "generation": "7", "manifest": {"sha256": 5}, "sources": {"a": {"kind": "cdn",
           "failures": "many", "breaker_until": 9}, "b": "x"}, "site": {
           "v2/clip": {"sha256": "a" * 64, "count": 2, "url": "u", "source": "cdn"},
           "v2/blip": {"count": 2, "url": "u", "source": "cdn"},  # no sha256: not trusted
           "v2/esrgan": {"sha256": "a" * 64, "count": True, "url": "u", "source": "cdn"}},
           "github": [], "served": {"v2/clip": {"source": None, "at": 1, "reason": "x"}}}
    state = State.from_json(json.dumps(doc).encode())
    assert state.generation is None and state.manifest is None and state.github == {}
    assert list(state.sources) == ["a"] and vars(state.sources["a"]) == vars(SourceState("cdn", breaker_until=9.0))
    assert list(state.site) == ["v2/clip"]
    assert vars(state.served["v2/clip"]) == vars(Served(None, 1.0, 0.0, "x")) and state.served_copy("v2/clip") is None


def test_a_damaged_state_file_costs_a_refetch_not_an_error(replica, sim: CdnSimulator) -> None:  # noqa: ANN001
    client = replica()
    good = thaw(client.get_model_reference("image_generation"))
    (client.config.cache_dir / "state.json").write_bytes(b'{"version": 1, "served": {"v2/image_generation": 3}}')
    sim.clear()
    assert thaw(replica().get_model_reference("image_generation")) == good
    assert [k for _h, k, _s in sim.log()] == [MANIFEST_FILE, v2_key("image_generation")]


# ---------------------------------------------------------------------------------------------------
# cold start: importing the client pulls in neither the builder nor the network stack


def test_importing_the_client_stays_small(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from builder.replica import ReplicaClient\n"
        f"c = ReplicaClient(env={{}}, cache_home={str(tmp_path)!r}, primary_api_url=None, enable_github_fallback=False)\n"
        "c.get_model_reference_or_none('clip')\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.split()
    assert "builder.replica.client" in loaded and "builder.routes" in loaded
    heavy = ("builder.site", "builder.contrib", "builder.publish", "builder.legacy", "boto3", "botocore", "github",
             "httpx", "cryptography", "asyncio", "tempfile", "jsonschema", "yaml")
    assert [m for m in loaded if m.split(".")[0] in heavy or m.startswith(heavy)] == []
