"""Fuzz targets: each takes arbitrary bytes and fails (an AssertionError, or any exception outside the
target's documented error types) only when an invariant breaks.

The invariants are the ones the hardening issue asks for:

- `data_record`: a data file (YAML or JSON) -> the loader and the validator report problems as
  `FILE:POINTER: message` lines and never raise; what they accept is publishable (the v2 record and
  its JSON serialise: no NaN, no integer past 2^53, no non-string key).
- `legacy_json` / `legacy_csv`: a legacy file -> the importer's conversion raises only `HmrError`s with
  one-line messages, and what it converts serialises.
- `manifest` / `client_state` / `document`: the replica client's parsers for bytes off the wire or the
  disk raise only their documented errors (`state.json` never raises: damaged means absent).
- `serve_request`: raw bytes on a connection to `hmr serve` get an HTTP status line or a closed
  connection, never a traceback, and the server keeps answering.

`tests/fuzz/test_fuzz.py` runs each briefly under hypothesis in the suite; `python -m tests.fuzz`
runs a campaign (atheris where it is installed, hypothesis otherwise).
"""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import orjson

from builder.categories import BY_NAME
from builder.errors import HmrError, TrustError

#: the largest integer a JSON consumer (a JavaScript front end) holds exactly
SAFE_INT = 2**53


def _one_line(text: str) -> None:
    assert "\n" not in text.strip() and "Traceback" not in text, f"not one line: {text!r}"


def _publishable(value: object) -> None:
    """What the build would write: JSON with finite numbers and integers a browser can hold."""
    def walk(v: object) -> None:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return
        if isinstance(v, int):
            assert abs(v) <= SAFE_INT, f"integer {v} past 2^53 accepted"
        elif isinstance(v, float):
            assert v == v and v not in (float("inf"), float("-inf")), f"non-finite {v} accepted"
        elif isinstance(v, dict):
            for k, x in v.items():
                assert isinstance(k, str), f"non-string key {k!r} accepted"
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        else:
            raise AssertionError(f"{type(v).__name__} value {v!r} accepted")
    walk(value)
    orjson.dumps(value)


@cache
def _scratch() -> Path:
    """A data folder reused by every input (one file rewritten each time)."""
    root = Path(tempfile.mkdtemp(prefix="hmr-fuzz-"))
    (root / "data" / "image_generation").mkdir(parents=True)
    return root / "data"


def data_record(data: bytes, suffix: str = ".yaml") -> None:
    """A data file of image_generation, through the loader and the validator."""
    from builder.load import load_checked
    from builder.v2 import v2_record

    root = _scratch()
    folder = root / "image_generation"
    for old in folder.iterdir():
        old.unlink()
    (folder / f"fuzzed{suffix}").write_bytes(data)
    cats, problems = load_checked(root, None, ["image_generation"], legacy=False)
    for p in problems:
        _one_line(str(p))
    if any(p.severity == "error" for p in problems):
        return
    cd = cats["image_generation"]
    for rec in cd.records.values():
        _publishable(rec.data)
        _publishable(v2_record(cd.category, rec))


def data_record_json(data: bytes) -> None:
    """The same for a `.json` data file."""
    data_record(data, ".json")


def _legacy(name: str, files: dict[str, bytes]) -> None:
    from builder.legacy.convert import records_from_legacy

    cat = BY_NAME[name]
    try:
        records, settings = records_from_legacy(cat, files)
    except HmrError as e:
        _one_line(str(e))
        return
    _publishable(records)
    _publishable(settings)


def legacy_json(data: bytes) -> None:
    """A stable_diffusion.json and a utility file (clip.json) through the importer's conversion."""
    _legacy("image_generation", {"stable_diffusion.json": data})
    _legacy("clip", {"clip.json": data})


def legacy_csv(data: bytes) -> None:
    """A text repository's models.csv through the importer's conversion."""
    _legacy("text_generation", {"models.csv": data})


def manifest(data: bytes) -> None:
    """A manifest off the wire."""
    from builder.replica.trust import parse_manifest

    try:
        m = parse_manifest(data)
    except TrustError as e:
        _one_line(str(e))
        return
    assert isinstance(m.generation, int) and m.generation >= 1
    for key in m.files:  # entries are checked as they are read: a bad one is a ManifestError then
        try:
            entry = m.files[key]
        except TrustError as e:
            _one_line(str(e))
            continue
        assert isinstance(key, str) and isinstance(entry.bytes, int), (key, entry)


def document(data: bytes) -> None:
    """A category document and a renames table off the wire."""
    from builder.replica.trust import parse_document, parse_renames

    for parse in (parse_document, parse_renames):
        try:
            parse(data)
        except TrustError as e:
            _one_line(str(e))


def client_state(data: bytes) -> None:
    """`state.json` from the shared cache: never raises, and what it loads writes back and reloads."""
    from builder.replica.state import State

    state = State.from_json(data)
    again = State.from_json(state.to_json())
    assert again.to_json() == state.to_json()


class _Server:
    """One `hmr serve` of a tiny site in a thread, shared by every input."""

    def __init__(self) -> None:
        from builder.site.serve import make_server

        site = Path(tempfile.mkdtemp(prefix="hmr-fuzz-site-"))
        (site / "index.html").write_text("<!doctype html><title>x</title>", encoding="utf-8")
        (site / "api").mkdir()
        (site / "api" / "heartbeat.json").write_text('{"ok":true}', encoding="utf-8")
        self.server = make_server(site, port=0, quiet=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def exchange(self, data: bytes, timeout: float = 5.0) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:  # the server may close first on a request it refuses early
                pass
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except (ConnectionResetError, TimeoutError):
                pass
        return out


@cache
def _server() -> _Server:
    return _Server()


def serve_request(data: bytes) -> None:
    """Raw bytes on a connection: a status line (or nothing, for no request at all); still serving."""
    srv = _server()
    answer = srv.exchange(data)
    # a first line of only whitespace is no request (servers skip blank lines before one, RFC 9112 2.2)
    if data.split(b"\n", 1)[0].decode("iso-8859-1").split():
        assert answer.startswith(b"HTTP/1."), f"no status line for {data[:80]!r}: {answer[:80]!r}"
    ok = srv.exchange(b"GET /api/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), "the server stopped answering"


#: every target by name
TARGETS: dict[str, Callable[[bytes], None]] = {
    "data_record": data_record,
    "data_record_json": data_record_json,
    "legacy_json": legacy_json,
    "legacy_csv": legacy_csv,
    "manifest": manifest,
    "document": document,
    "client_state": client_state,
    "serve_request": serve_request,
}
