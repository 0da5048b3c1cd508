"""`hmr import-v2`: v2 documents from a directory or a PRIMARY's read API, merged into data/.

With a legacy import first, the data keeps what only v1 carries (the `legacy:` blocks) and what only v2
carries (controlnet_annotator, v2-only fields); both round trip through `hmr serve`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from builder.routes import model_file, model_page, v2_file
from tests.helpers import HMR, REFERENCE_V2, ROOT, run_hmr, tree_digest
from tests.site_support import free_port, wait_for_port

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`hmr serve` of a site built from the bundled data plus a v2-only field: (base URL, site)."""
    work = tmp_path_factory.mktemp("primary")
    shutil.copytree(ROOT / "data", work / "data")
    # a v2-only field on a record that has a legacy file too (legacy files cannot carry it)
    rec = work / "data" / "image_generation" / "Deliberate.yaml"
    rec.write_text(rec.read_text(encoding="utf-8") + "finetune_series:\n  name: Deliberate\n  author: XpucT\n", encoding="utf-8")
    r = run_hmr("build", "--data", "data", "--out", "site", cwd=work, env=EPOCH)
    assert r.returncode == 0, r.stderr
    port = free_port()
    proc = subprocess.Popen([*HMR, "serve", "--site", str(work / "site"), "--port", str(port), "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", work / "site"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_legacy_then_a_v2_import_of_a_primary_builds_it_back(primary: tuple[str, Path], tmp_path: Path) -> None:
    base, site = primary
    r = run_hmr("import-legacy", f"{base}/legacy", "--data", "data", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "data" / "controlnet_annotator").exists()  # no legacy file has it
    r = run_hmr("import-v2", f"{base}/api", "--data", "data", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "controlnet_annotator 1" in r.stdout and "1 record(s) added" in r.stdout
    # the v2-only field came in; the legacy block the legacy import wrote stayed
    deliberate = yaml.safe_load((tmp_path / "data" / "image_generation" / "Deliberate.yaml").read_text())
    assert deliberate["finetune_series"] == {"name": "Deliberate", "author": "XpucT"} and "legacy" in deliberate
    # importing the same documents again changes nothing
    before = tree_digest(tmp_path / "data")
    r = run_hmr("import-v2", f"{base}/api", "--data", "data", cwd=tmp_path)
    assert r.returncode == 0 and "0 file(s) written" in r.stdout, r.stdout + r.stderr
    assert tree_digest(tmp_path / "data") == before
    # and the rebuilt site publishes the same v1, legacy and v2 documents, byte for byte
    r = run_hmr("build", "--data", "data", "--out", "site", cwd=tmp_path, env=EPOCH)
    assert r.returncode == 0, r.stderr
    for folder in ("api/model_references/v1", "api/model_references/v2", "legacy"):
        ours, theirs = _files(tmp_path / "site" / folder), _files(site / folder)
        assert ours.keys() == theirs.keys(), folder
        assert [k for k in ours if ours[k] != theirs[k]] == [], folder


def test_the_existing_librarys_v2_files_on_top_of_the_legacy_import_change_nothing(tmp_path: Path,
                                                                                  corpus_data: Path) -> None:
    # corpus/reference-v2 is what 8.6.2 converted from the same legacy files: it only fills in defaults
    data = tmp_path / "data"
    shutil.copytree(corpus_data, data)
    before = tree_digest(data)
    r = run_hmr("import-v2", str(REFERENCE_V2), "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert "0 record(s) added, 0 changed" in r.stdout and "image_generation 161" in r.stdout, r.stdout
    assert tree_digest(data) == before


def test_v2_files_alone_make_a_data_set_that_builds(tmp_path: Path) -> None:
    r = run_hmr("import-v2", str(REFERENCE_V2), "--data", "data", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ref = json.loads((REFERENCE_V2 / "stable_diffusion.json").read_bytes())
    assert f"image_generation {len(ref)}" in r.stdout
    r = run_hmr("build", "--data", "data", "--out", "site", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ours = json.loads((tmp_path / "site" / "api" / "model_references" / "v2" / "image_generation.json").read_bytes())
    assert list(ours) == list(ref)  # the document's order is kept
    assert {k: v["baseline"] for k, v in ours.items()} == {k: v["baseline"] for k, v in ref.items()}


def _v2_dir(tmp_path: Path, doc: object, name: str = "controlnet_annotator.json") -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / name).write_text(json.dumps(doc), encoding="utf-8")
    return src


def _annotator(name: str, **extra: object) -> dict:
    return {"record_type": "controlnet_annotator", "name": name, "description": "an annotator",
            "config": {"download": [{"file_name": "a.pth", "file_url": "https://example.org/a.pth",
                                     "sha256sum": "0" * 64}]}, **extra}


@pytest.mark.parametrize(("doc", "message"), [
    ([1, 2], "src/controlnet_annotator.json:: not a JSON object of records"),
    ({"hed": "x"}, "src/controlnet_annotator.json:/hed: record is not an object"),
    ({"a/b": ["x"]}, "src/controlnet_annotator.json:/a~1b: record is not an object"),
])
def test_a_malformed_document_is_one_line_naming_file_and_pointer(tmp_path: Path, doc: object, message: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    before = tree_digest(data)
    r = run_hmr("import-v2", str(_v2_dir(tmp_path, doc)), "--data", str(data), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path}/{message}"]
    assert tree_digest(data) == before


def test_a_record_that_would_not_validate_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    before = tree_digest(data)
    doc = {"hed": _annotator("hed"), "bad": _annotator("bad", size_on_disk_bytes="huge")}
    r = run_hmr("import-v2", str(_v2_dir(tmp_path, doc)), "--data", str(data), cwd=tmp_path)
    assert r.returncode == 1
    assert f"{data}/controlnet_annotator/bad.yaml:/size_on_disk_bytes" in r.stderr, r.stderr
    assert tree_digest(data) == before


def test_unsafe_keys_stay_in_their_folder_and_prune_removes_what_the_source_lacks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    doc = {"../../escape": _annotator("../../escape"), "new one": _annotator("new one")}
    r = run_hmr("import-v2", str(_v2_dir(tmp_path, doc)), "--data", str(data), "--prune", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 record(s) added" in r.stdout and "1 removed" in r.stdout, r.stdout
    folder = data / "controlnet_annotator"
    names = sorted(p.name for p in folder.iterdir())
    assert "hed.yaml" not in names and "new one.yaml" in names
    assert [n for n in names if n.startswith("_~")] == ["_~..%2F..%2Fescape.yaml"]
    assert not (tmp_path / "escape.yaml").exists()
    r = run_hmr("build", "--data", str(data), "--out", str(tmp_path / "site"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    site = tmp_path / "site"
    built = json.loads((site / v2_file("controlnet_annotator")).read_bytes())
    assert list(built) == ["../../escape", "new one"]
    # the per-model document and page of the unsafe key are published under its encoded name, inside
    # their folders; nothing lands outside them
    assert (site / model_file("controlnet_annotator", "../../escape")).is_file()
    assert (site / model_page("controlnet_annotator", "../../escape")).is_file()
    assert model_page("controlnet_annotator", "../../escape") == "models/controlnet_annotator/_~..%2F..%2Fescape.html"
    assert [p.name for p in site.rglob("escape*")] == []


def test_the_python_api_is_the_command(tmp_path: Path) -> None:
    from builder import api

    summary = api.import_v2(str(_v2_dir(tmp_path, {"x": _annotator("x")})), tmp_path / "data")
    assert summary.added == 1 and summary.categories == {"controlnet_annotator": 1}
    assert sys.modules["builder.v2import"].import_v2 is api.import_v2
