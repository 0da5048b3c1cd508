"""Our additions to the old API: the change feed (changes.json / changes.atom) between two builds of
two data sets, given as a directory or a URL or implied by the output directory; index.json; the
published schemas; the signed manifest."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.categories import CATEGORIES
from builder.signing import SignatureError, key_id, parse_public_key, verify
from builder.site import changes as changes_mod
from builder.site.build import build as build_site
from builder.site.changes import ATOM_FILE, CHANGES_FILE, field_changes
from builder.site.manifest import MANIFEST_FILE, SIGNATURE_FILE
from builder.site.serve import make_server
from tests.site_support import CORPUS, ROOT, load_manifest, run_hmr

V2 = "api/model_references/v2"
BUNDLED = ROOT / "data"
ATOM = "{http://www.w3.org/2005/Atom}"
HISTORY = CORPUS / "legacy" / "history" / "image"


def cli_build(data: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> None:
    r = run_hmr("build", "--data", str(data), "--out", str(out), *extra, env=env)
    assert r.returncode == 0, r.stderr


def history(site: Path) -> list[dict]:
    doc = json.loads((site / CHANGES_FILE).read_bytes())
    assert doc["schema_version"] == 1
    return doc["history"]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def two_data_sets(tmp_path: Path) -> tuple[Path, Path]:
    """The bundled data set, and a copy with one model edited (two fields), one removed, one added."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(BUNDLED, a)
    shutil.copytree(BUNDLED, b)
    img = b / "image_generation"
    edit(img / "Deliberate.yaml", "version: '2'", "version: '2.1'")
    edit(img / "Deliberate.yaml", "  - detailed\n", "  - detailed\n  - portrait\n")
    (img / "SDXL 1.0.yaml").unlink()
    added = (img / "Deliberate.yaml").read_text().replace("name: Deliberate\n", "name: Deliberate <b>Two\n")
    (img / "Deliberate <b>Two.yaml").write_text(added)
    edit(b / "text_generation" / "google" / "gemma-2-9b-it.yaml", "instruct_format: Gemma", "instruct_format: Gemma2")
    return a, b


EXPECTED = {
    "added": [{"category": "image_generation", "key": "Deliberate <b>Two"}],
    "removed": [{"category": "image_generation", "key": "SDXL 1.0"}],
    "changed": [
        {"category": "image_generation", "key": "Deliberate", "fields": [
            {"field": "/version", "old": "2", "new": "2.1"},
            {"field": "/tags", "old": ["detailed"], "new": ["detailed", "portrait"]}]},
        {"category": "text_generation", "key": "google/gemma-2-9b-it", "fields": [
            {"field": "/instruct_format", "old": "Gemma", "new": "Gemma2"}]},
    ],
}


def test_change_feed_lists_exactly_the_changed_models(two_data_sets: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_data_sets
    cli_build(a, tmp_path / "site-a")
    assert history(tmp_path / "site-a") == []  # a first build has nothing to compare with
    cli_build(b, tmp_path / "site-b", "--previous", str(tmp_path / "site-a"))
    site = tmp_path / "site-b"
    entries = history(site)
    assert len(entries) == 1
    e = entries[0]
    manifest = load_manifest(site)
    assert (e["generation"], e["previous_generation"]) == (2, 1) == (manifest["generation"], 1)
    assert e["built_at"] == manifest["built_at"] and e["source_commit"] == manifest["source_commit"]
    # changed models in category order, fields in record order
    assert {k: e[k] for k in ("added", "removed", "changed")} == EXPECTED
    assert_valid(json.loads((site / CHANGES_FILE).read_bytes()), "changes")
    # the Atom feed says the same
    feed = ET.fromstring((site / ATOM_FILE).read_bytes())
    assert feed.findtext(f"{ATOM}title") and feed.findtext(f"{ATOM}updated") == e["built_at"]
    items = feed.findall(f"{ATOM}entry")
    assert len(items) == 1
    assert items[0].findtext(f"{ATOM}title") == "Generation 2: 1 added, 1 removed, 2 changed"
    assert items[0].findtext(f"{ATOM}updated") == e["built_at"]
    content = items[0].findtext(f"{ATOM}content")
    assert "image_generation/Deliberate &lt;b&gt;Two</a>" in content  # data escaped inside the HTML
    assert "models/image_generation/Deliberate%20%3Cb%3ETwo.html" in content
    assert "<code>/instruct_format</code>: Gemma → Gemma2" in content and "SDXL 1.0" in content
    # both keys are published, with their types
    files = manifest["files"]
    assert files[CHANGES_FILE]["content_type"] == "application/json"
    assert files[ATOM_FILE]["content_type"] == "application/atom+xml"
    assert files[CHANGES_FILE[:-5]] == files[CHANGES_FILE]


def test_previous_as_url_and_as_the_output_directory(two_data_sets: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_data_sets
    cli_build(a, tmp_path / "site-a")
    server = make_server(tmp_path / "site-a", "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        cli_build(b, tmp_path / "site-url", "--previous", f"http://127.0.0.1:{server.server_address[1]}")
        paths = {e.path for e in server.log}
    finally:
        server.shutdown()
        server.server_close()
    assert {k: history(tmp_path / "site-url")[0][k] for k in EXPECTED} == EXPECTED
    assert load_manifest(tmp_path / "site-url")["generation"] == 2
    # only the manifest, the history and the categories whose sha256 changed were fetched
    assert paths == {f"/{MANIFEST_FILE}", f"/{CHANGES_FILE}", f"/{V2}/image_generation.json",
                     f"/{V2}/text_generation.json"}
    # without --previous, the output directory's build is the previous one
    site = tmp_path / "site"
    cli_build(a, site)
    cli_build(b, site)
    assert {k: history(site)[0][k] for k in EXPECTED} == EXPECTED
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}
    cli_build(b, site)  # no change: the history is carried over, nothing is rewritten
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()} == before
    # a second change is prepended (newest first)
    edit(b / "image_generation" / "Deliberate.yaml", "version: '2.1'", "version: '3'")
    cli_build(b, site)
    entries = history(site)
    assert [e["generation"] for e in entries] == [3, 2]
    assert entries[0]["changed"] == [{"category": "image_generation", "key": "Deliberate",
                                      "fields": [{"field": "/version", "old": "2.1", "new": "3"}]}]
    assert entries[0]["added"] == entries[0]["removed"] == []
    assert len(ET.fromstring((site / ATOM_FILE).read_bytes()).findall(f"{ATOM}entry")) == 2


def test_a_bad_previous_fails_the_build(tmp_path: Path) -> None:
    r = run_hmr("build", "--data", str(BUNDLED), "--out", str(tmp_path / "s"), "--previous", str(tmp_path / "no"))
    assert r.returncode == 1 and "--previous" in r.stderr and r.stderr.count("\n") == 1
    r = run_hmr("build", "--data", str(BUNDLED), "--out", str(tmp_path / "s"), "--previous", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot fetch" in r.stderr
    assert not (tmp_path / "s").exists()


def test_history_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changes_mod, "HISTORY_LIMIT", 3)
    data, site = tmp_path / "data", tmp_path / "site"
    shutil.copytree(BUNDLED, data)
    build_site(data, site)
    for n in range(5):
        edit(data / "image_generation" / "Deliberate.yaml", f"version: '{2 + n}'" if n else "version: '2'",
             f"version: '{3 + n}'")
        build_site(data, site)
    assert [e["generation"] for e in history(site)] == [6, 5, 4]
    assert history(site)[0]["changed"][0]["fields"] == [{"field": "/version", "old": "6", "new": "7"}]


def test_two_real_data_sets_from_the_corpus_history(tmp_path: Path) -> None:
    # two versions of the image repository, months apart: the feed lists what an independent diff of
    # their v2 files finds, no more and no less
    old_src, new_src = HISTORY / "2024-10-02_d6e558ad", HISTORY / "2024-11-19_c8cd54aa"
    sites = []
    for name, src in (("old", old_src), ("new", new_src)):
        r = run_hmr("import-legacy", str(src), "--data", str(tmp_path / name / "data"))
        assert r.returncode == 0, r.stderr
        sites.append(tmp_path / name / "site")
    cli_build(tmp_path / "old" / "data", sites[0])
    cli_build(tmp_path / "new" / "data", sites[1], "--previous", str(sites[0]))
    before = json.loads((sites[0] / V2 / "image_generation.json").read_bytes())
    after = json.loads((sites[1] / V2 / "image_generation.json").read_bytes())
    e = history(sites[1])[0]
    assert [i["key"] for i in e["added"]] == [k for k in after if k not in before]
    assert [i["key"] for i in e["removed"]] == [k for k in before if k not in after]
    assert [i["key"] for i in e["changed"]] == [k for k in after if k in before and
                                                json.dumps(after[k], sort_keys=True) !=
                                                json.dumps(before[k], sort_keys=True)]
    assert e["added"] and e["removed"] and e["changed"]
    for c in e["changed"]:
        assert c["fields"] == field_changes(before[c["key"]], after[c["key"]]) and c["fields"]
    assert_valid(json.loads((sites[1] / CHANGES_FILE).read_bytes()), "changes")


def test_field_changes_are_json_exact() -> None:
    assert field_changes({"a": 1, "b": {"c": 1, "d": [1]}, "x": True}, {"a": 1.0, "b": {"c": 1, "d": [1, 2]},
                                                                       "x": 1, "y/z~": None}) == [
        {"field": "/a", "old": 1, "new": 1.0},  # JSON 1 and 1.0 differ; Python says they are equal
        {"field": "/b/d", "old": [1], "new": [1, 2]},
        {"field": "/x", "old": True, "new": 1},
        {"field": "/y~1z~0", "new": None},
    ]


# ---------------------------------------------------------------------------------------------------
# index.json, schemas, signature


def assert_valid(doc: object, schema: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / f"{schema}.schema.json").read_bytes()))
    assert not [e.message for e in validator.iter_errors(doc)]


def test_index_has_one_row_per_model(site_dir: Path) -> None:
    doc = json.loads((site_dir / V2 / "index.json").read_bytes())
    assert doc["schema_version"] == 1
    assert_valid(doc, "index")
    rows = doc["models"]
    expected = [(c.name, k) for c in CATEGORIES
                for k in json.loads((site_dir / V2 / f"{c.name}.json").read_bytes())]
    assert [(r["category"], r["key"]) for r in rows] == expected and doc["count"] == len(rows) == 913
    by_key = {(r["category"], r["key"]): r for r in rows}
    d = by_key[("image_generation", "Deliberate")]
    assert d == {"category": "image_generation", "key": "Deliberate", "name": "Deliberate",
                 "baseline": "stable_diffusion_1", "nsfw": True, "inpainting": False, "style": "generalist",
                 "size_on_disk_bytes": 2132780730, "url": "https://civitai.com/models/4823/deliberate"}
    t = by_key[("text_generation", "anthracite-org/magnum-12b-v2")]
    assert t["parameters"] == 12_000_000_000 and t["url"].startswith("https://huggingface.co/")
    assert all(set(r) <= {"category", "key", "name", "baseline", "nsfw", "tags", "inpainting", "style",
                          "size_on_disk_bytes", "parameters", "url"} for r in rows)


def test_schemas_are_published(site_dir: Path) -> None:
    files = load_manifest(site_dir)["files"]
    repo = sorted((ROOT / "schemas").glob("*.json"))
    assert len(repo) >= 16
    for p in repo:
        key = f"schemas/{p.name}"
        assert (site_dir / key).read_bytes() == p.read_bytes()
        assert files[key]["content_type"] == "application/json"


def write_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def test_signed_manifest(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.pem")
    public = key.public_key()
    raw_public = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    site = tmp_path / "site"
    cli_build(BUNDLED, site, "--sign-key", str(tmp_path / "key.pem"))
    manifest, sig = (site / MANIFEST_FILE).read_bytes(), (site / SIGNATURE_FILE).read_bytes()
    doc = json.loads(sig)
    assert doc["algorithm"] == "ed25519" and doc["key_id"] == key_id(raw_public)
    trusted = parse_public_key(base64.b64encode(raw_public).decode())
    assert verify(manifest, sig, [trusted]) == key_id(raw_public)
    with pytest.raises(SignatureError):
        verify(manifest + b" ", sig, [trusted])
    with pytest.raises(SignatureError):
        verify(manifest, sig, [Ed25519PrivateKey.generate().public_key()])
    # the signature sits beside the manifest, is served, and is not listed in it
    assert SIGNATURE_FILE not in json.loads(manifest)["files"]
    # the same inputs and key sign the same bytes (Ed25519 is deterministic); no key, no signature
    cli_build(BUNDLED, site, "--sign-key", str(tmp_path / "key.pem"))
    assert (site / SIGNATURE_FILE).read_bytes() == sig
    cli_build(BUNDLED, site)
    assert not (site / SIGNATURE_FILE).exists()
    # a bad key is a one-line error and nothing is written
    (tmp_path / "bad.pem").write_text("not a key\n")
    r = run_hmr("build", "--data", str(BUNDLED), "--out", str(tmp_path / "s2"), "--sign-key",
                str(tmp_path / "bad.pem"))
    assert r.returncode == 1 and "Ed25519" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "s2").exists()


@pytest.fixture
def signed_site(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    write_key(tmp_path / "key.pem")
    cli_build(BUNDLED, tmp_path / "site", "--sign-key", str(tmp_path / "key.pem"))
    server = make_server(tmp_path / "site", "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield tmp_path / "site", server.server_address[1]
    server.shutdown()
    server.server_close()


def test_signature_is_served(signed_site: tuple[Path, int]) -> None:
    from tests.site_support import Http

    site, port = signed_site
    http = Http(port)
    try:
        r = http.get_key(SIGNATURE_FILE)
        assert r.status == 200 and r.body == (site / SIGNATURE_FILE).read_bytes()
    finally:
        http.close()
