"""`hmr model add|update|remove|rename` on a copy of the imported corpus: round trips through the
build, and invalid edits that must change nothing (tree digest: bytes, mtimes and inodes)."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from builder.contrib import crud
from builder.routes import RENAMES_FILE, V2, model_file, search_file, v1_file, v2_file
from builder.site.build import build
from tests.helpers import HMR, ROOT, run_hmr, tree_digest

SHA = "0123456789abcdef" * 4
URL = "https://huggingface.co/example/new-model/resolve/main/new-model.safetensors"


def compiled(data: Path) -> dict[str, bytes]:
    """What `hmr build` writes, compiled in memory (the tests that need the files on disk run the CLI)."""
    from builder.load import load_valid
    from builder.site.outputs import compile_outputs

    return compile_outputs(load_valid(data)[0])


def _read(site: Path | dict, rel: str) -> bytes:
    return site[rel] if isinstance(site, dict) else (site / rel).read_bytes()


def v1(site: Path | dict, cat: str = "image_generation") -> dict:
    return json.loads(_read(site, v1_file(cat)))


def v2(site: Path | dict, cat: str = "image_generation") -> dict:
    return json.loads(_read(site, v2_file(cat)))


def settings(data: Path, cat: str = "image_generation") -> dict:
    return yaml.safe_load((data / cat / "_category.yaml").read_text())


def test_add_then_build_shows_the_model_in_v1_and_v2(data_copy: Path, tmp_path: Path) -> None:
    r = run_hmr("model", "add", "image_generation", "Test Model XL", "--data", str(data_copy),
                "--baseline", "stable_diffusion_xl", "--sfw", "--description", "A model: for tests",
                "--url", URL, "--sha256", SHA, "--size-bytes", "6938040682", "--set", "tags=[anime, test]",
                "--set-str", "version=1.0", "--by", "tester")
    assert r.returncode == 0, r.stderr
    path = data_copy / "image_generation" / "Test Model XL.yaml"
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/image_generation.schema.json\n")
    rec = yaml.safe_load(text)
    assert rec["metadata"]["created_at"] == rec["metadata"]["updated_at"] > 1_600_000_000
    assert rec["metadata"]["created_by"] == "tester"

    site = tmp_path / "site"
    build(data_copy, site)
    legacy = v1(site)
    assert list(legacy)[-1] == "Test Model XL"  # unpinned, newest: last in the legacy order
    assert legacy["Test Model XL"]["baseline"] == "stable_diffusion_xl"
    assert legacy["Test Model XL"]["config"]["files"][0]["sha256sum"] == SHA
    assert legacy["Test Model XL"]["type"] == "ckpt"  # what the legacy validator requires
    rec2 = v2(site)["Test Model XL"]
    assert rec2["description"] == "A model: for tests" and rec2["version"] == "1.0"
    assert rec2["tags"] == ["anime", "test"] and rec2["nsfw"] is False
    assert rec2["config"]["download"][0] == {"file_name": "new-model.safetensors", "file_url": URL,
                                             "sha256sum": SHA, "size_bytes": 6938040682}
    one = json.loads((site / model_file("image_generation", "Test Model XL")).read_bytes())
    assert one == rec2
    assert "Test Model XL" in (site / f"{V2}/index.json").read_text()  # the search index
    page = (site / "models" / "image_generation" / "Test Model XL.html").read_text()  # the HTML page
    assert "Test Model XL" in page and "A model: for tests" in page and SHA in page


def test_add_from_a_file_and_from_stdin(data_copy: Path, tmp_path: Path) -> None:
    record = {"baseline": "stable_diffusion_1", "nsfw": True, "description": "from a file",
              "config": {"download": [{"file_name": "f.ckpt", "file_url": URL, "sha256sum": SHA}]}}
    src = tmp_path / "rec.json"
    src.write_text(json.dumps(record))
    r = run_hmr("model", "add", "image_generation", "From File", "-f", str(src), "--data", str(data_copy))
    assert r.returncode == 0, r.stderr
    p = subprocess.run([*HMR, "model", "add", "image_generation", "From Stdin", "-f", "-", "--data", str(data_copy)],
                       input=yaml.safe_dump(record), text=True, capture_output=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    for key in ("From File", "From Stdin"):
        rec = yaml.safe_load((data_copy / "image_generation" / f"{key}.yaml").read_text())
        assert rec["name"] == key and rec["nsfw"] is True and rec["description"] == "from a file"


def test_update_changes_exactly_that_field(data_copy: Path) -> None:
    before_site = compiled(data_copy)
    key = "Deliberate"
    path = data_copy / "image_generation" / f"{key}.yaml"
    old_text = path.read_text()
    others = {p: p.read_bytes() for p in data_copy.rglob("*") if p.is_file() and p != path}

    was = yaml.safe_load(old_text)["nsfw"]
    now = "false" if was else "true"
    r = run_hmr("model", "update", "image_generation", key, "--set", f"nsfw={now}", "--data", str(data_copy))
    assert r.returncode == 0, r.stderr
    assert {p: p.read_bytes() for p in data_copy.rglob("*") if p.is_file() and p != path} == others

    # the file: the nsfw line and the new metadata block, nothing else (key order kept)
    new_text = path.read_text()
    delta = [d for d in difflib.ndiff(old_text.splitlines(), new_text.splitlines()) if d[:2] in ("- ", "+ ")]
    removed = [d[2:] for d in delta if d.startswith("- ")]
    added = [d[2:] for d in delta if d.startswith("+ ")]
    assert removed == [f"nsfw: {str(was).lower()}"]
    assert added == ["metadata:", added[1], f"nsfw: {now}"] and added[1].startswith("  updated_at: ")

    after_site = compiled(data_copy)
    old_v1, new_v1 = v1(before_site), v1(after_site)
    assert list(old_v1) == list(new_v1)
    assert {k for k in old_v1 if old_v1[k] != new_v1[k]} == {key}
    assert {f for f in old_v1[key] | new_v1[key] if old_v1[key].get(f) != new_v1[key].get(f)} == {"nsfw"}
    old_v2, new_v2 = v2(before_site), v2(after_site)
    assert {k for k in old_v2 if old_v2[k] != new_v2[k]} == {key}
    changed = {f for f in old_v2[key] | new_v2[key] if old_v2[key].get(f) != new_v2[key].get(f)}
    assert changed == {"nsfw", "metadata"}
    assert set(new_v2[key]["metadata"]) - set(old_v2[key]["metadata"]) == {"updated_at"}
    # every other category file is byte-identical
    assert {k for k in before_site if before_site[k] != after_site.get(k)} == {
        v1_file("image_generation"), "legacy/stable_diffusion.json", v2_file("image_generation"),
        model_file("image_generation", key), search_file("image_generation")}

    # --unset and dotted paths into lists
    r = run_hmr("model", "update", "image_generation", key, "--unset", "showcases", "--set",
                f"config.download.0.sha256sum={'f' * 64}", "--data", str(data_copy))
    assert r.returncode == 0, r.stderr
    rec = yaml.safe_load(path.read_text())
    assert "showcases" not in rec and rec["config"]["download"][0]["sha256sum"] == "f" * 64


def test_update_keeps_comments_and_layout(tmp_path: Path) -> None:
    """The bundled data is hand-formatted (indented lists, comments): an edit keeps all of that."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    path = data / "image_generation" / "Deliberate.yaml"
    path.write_text(path.read_text().replace("tags:\n", "# tags chosen by the author\ntags:\n")
                    .replace("nsfw: false\n", "nsfw: false  # checked\n"))
    old = path.read_text()
    r = run_hmr("model", "update", "image_generation", "Deliberate", "--set", "style=realistic",
                "--set", "config.download.0.size_bytes=2132625894", "--data", str(data))
    assert r.returncode == 0, r.stderr
    new = path.read_text()
    assert "# tags chosen by the author\ntags:\n  - detailed\n" in new
    assert "nsfw: false  # checked\n" in new
    assert "    - file_name: Deliberate_v2.safetensors\n" in new  # list indentation of the file kept
    assert "      size_bytes: 2132625894\n" in new
    assert new.splitlines()[0] == old.splitlines()[0]  # schema hint
    assert [line.split(":")[0] for line in new.splitlines() if line and line[0].isalpha()] == \
        [k for k in ["name", "description", "version", "metadata", "config", "inpainting", "baseline", "tags",
                     "homepage", "nsfw", "style", "legacy"]]


def test_rename_keeps_legacy_order_and_publishes_the_rename(data_copy: Path) -> None:
    before = compiled(data_copy)
    old_order = list(v1(before))
    r = run_hmr("model", "rename", "image_generation", "Deliberate", "Deliberate Classic", "--data", str(data_copy))
    assert r.returncode == 0, r.stderr
    assert not (data_copy / "image_generation" / "Deliberate.yaml").exists()
    moved = yaml.safe_load((data_copy / "image_generation" / "Deliberate Classic.yaml").read_text())
    assert moved["name"] == "Deliberate Classic"
    assert settings(data_copy)["renames"] == {"Deliberate": "Deliberate Classic"}

    after = compiled(data_copy)
    assert list(v1(after)) == ["Deliberate Classic" if k == "Deliberate" else k for k in old_order]
    assert list(v2(after)) == list(v1(after))
    renames = json.loads(after[RENAMES_FILE])
    assert renames == {"image_generation": {"Deliberate": "Deliberate Classic"}}
    assert model_file("image_generation", "Deliberate") not in after
    assert model_file("image_generation", "Deliberate Classic") in after
    # the v1 record is the old one under its new name
    old_rec = dict(v1(before)["Deliberate"], name="Deliberate Classic")
    assert v1(after)["Deliberate Classic"] == old_rec

    # renaming again flattens the chain; renaming back removes the live key from the map
    assert run_hmr("model", "rename", "image_generation", "Deliberate Classic", "Deliberate 2",
                   "--data", str(data_copy)).returncode == 0
    assert settings(data_copy)["renames"] == {"Deliberate": "Deliberate 2", "Deliberate Classic": "Deliberate 2"}
    assert run_hmr("model", "rename", "image_generation", "Deliberate 2", "Deliberate",
                   "--data", str(data_copy)).returncode == 0
    assert settings(data_copy)["renames"] == {"Deliberate Classic": "Deliberate", "Deliberate 2": "Deliberate"}


def test_rename_of_an_unpinned_model_pins_the_order_when_needed(data_copy: Path) -> None:
    """Unpinned models sort by created_at, then key: a new key that sorts elsewhere gets the order pinned."""
    for key in ("Zeta Model", "Alpha Model"):
        crud.add_model(data_copy, "image_generation", key, {"baseline": "stable_diffusion_1", "nsfw": False},
                       now=1_700_000_000)
    from builder.records import load

    order = list(load(data_copy)[0]["image_generation"].records)
    assert order[-2:] == ["Alpha Model", "Zeta Model"]
    crud.rename_model(data_copy, "image_generation", "Zeta Model", "A Model")
    after = list(load(data_copy)[0]["image_generation"].records)
    assert after == [k if k != "Zeta Model" else "A Model" for k in order]
    assert settings(data_copy)["order"] == after


def test_rename_nested_text_model(data_copy: Path) -> None:
    before = compiled(data_copy)
    text_order = [k for k in v2(before, "text_generation")]
    old = next(k for k in text_order if "/" in k)
    r = run_hmr("model", "rename", "text_generation", old, "renamed-org/sub/renamed-model", "--data",
                str(data_copy))
    assert r.returncode == 0, r.stderr
    path = data_copy / "text_generation" / "renamed-org" / "sub" / "renamed-model.yaml"
    assert path.read_text().startswith("# yaml-language-server: $schema=../../../../schemas/text_generation")
    assert not (data_copy / "text_generation" / old.split("/")[0]).exists() or \
        not (data_copy / "text_generation" / f"{old}.yaml").exists()
    after = compiled(data_copy)
    assert list(v2(after, "text_generation")) == [k if k != old else "renamed-org/sub/renamed-model"
                                                   for k in text_order]
    csv = after["legacy/models.csv"].decode()
    assert "renamed-org/sub/renamed-model" in csv and f"\r\n{old}," not in csv


def test_remove_deletes_it_everywhere(data_copy: Path, tmp_path: Path) -> None:
    assert run_hmr("model", "rename", "image_generation", "Deliberate", "Deliberate X",
                   "--data", str(data_copy)).returncode == 0
    r = run_hmr("model", "remove", "image_generation", "Deliberate X", "--data", str(data_copy))
    assert r.returncode == 0, r.stderr
    assert not list((data_copy / "image_generation").glob("Deliberate X.*"))
    s = settings(data_copy)
    assert "Deliberate X" not in s["order"] and "renames" not in s
    out = tmp_path / "site"
    build(data_copy, out)
    site = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for doc in (v1(site), v2(site)):
        assert "Deliberate X" not in doc and "Deliberate" not in doc
    # no per-model JSON, HTML page, search-index row, legacy record or rename left
    assert not [k for k in site if k.rsplit("/", 1)[-1].rsplit(".", 1)[0] in ("Deliberate", "Deliberate X")]
    assert not [k for k, b in site.items() if b"Deliberate X" in b and not k.startswith(f"{V2}/chang")]
    assert json.loads(site[RENAMES_FILE]) == {}


INVALID_EDITS = [
    ("bad sha256", ["update", "image_generation", "Deliberate", "--set", "config.download.0.sha256sum=abc123"]),
    ("unknown baseline", ["add", "image_generation", "New", "--baseline", "stable_diffusion_9", "--sfw"]),
    ("traversal key", ["add", "image_generation", "../../escape", "--baseline", "stable_diffusion_1", "--sfw"]),
    ("nested traversal key", ["add", "clip", "a/../../../b", "--set", "nsfw=false"]),
    ("backslash key", ["add", "image_generation", "a\\b", "--baseline", "stable_diffusion_1", "--sfw"]),
    ("duplicate key", ["add", "image_generation", "Deliberate", "--baseline", "stable_diffusion_1", "--sfw"]),
    ("duplicate key ignoring case", ["add", "image_generation", "deliberate", "--baseline",
                                     "stable_diffusion_1", "--sfw"]),
    ("http download URL", ["update", "image_generation", "Deliberate", "--set",
                           "config.download.0.file_url=http://example.com/x.ckpt"]),
    ("unknown field", ["update", "image_generation", "Deliberate", "--set", "colour=red"]),
    ("required field removed", ["update", "image_generation", "Deliberate", "--unset", "baseline"]),
    ("wrong type", ["update", "image_generation", "Deliberate", "--set", "nsfw=maybe"]),
    ("download file name with a path", ["update", "image_generation", "Deliberate", "--set",
                                        "config.download.0.file_name=../../x.ckpt"]),
    ("rename onto an existing key", ["rename", "image_generation", "Deliberate", "Dreamshaper"]),
    ("rename to a traversal key", ["rename", "image_generation", "Deliberate", "../Deliberate"]),
    ("update of a missing model", ["update", "image_generation", "No Such Model", "--set", "nsfw=true"]),
    ("remove of a missing model", ["remove", "image_generation", "No Such Model"]),
    ("unknown category", ["add", "image_gen", "X", "--set", "nsfw=false"]),
    ("text name differs from key", ["update", "text_generation", "{text}", "--set", "name=Other/Name"]),
    ("text settings outside the whitelist", ["update", "text_generation", "{text}", "--set", "settings.evil=1"]),
]


@pytest.fixture(scope="module")
def shared_copy(corpus_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for all invalid edits: each must leave it exactly as it was (which the test checks)."""
    dest = tmp_path_factory.mktemp("invalid-edits") / "data"
    shutil.copytree(corpus_data, dest)
    return dest


@pytest.mark.parametrize("args", [a for _, a in INVALID_EDITS], ids=[n for n, _ in INVALID_EDITS])
def test_invalid_edit_changes_nothing(args: list[str], shared_copy: Path,
                                      hmr_in_process: Callable[..., subprocess.CompletedProcess]) -> None:
    data = shared_copy
    if "{text}" in args:
        text_key = sorted(p.relative_to(data / "text_generation").with_suffix("").as_posix()
                          for p in (data / "text_generation").rglob("*.yaml") if p.name != "_category.yaml")[0]
        args = [text_key if a == "{text}" else a for a in args]
    before = tree_digest(data)
    r = hmr_in_process("model", *args, "--data", str(data))
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert tree_digest(data) == before
    assert not list(data.rglob("*.tmp-*"))  # no temporary file of an atomic write left behind


def test_invalid_edit_through_the_installed_cli(data_copy: Path) -> None:
    before = tree_digest(data_copy)
    r = run_hmr("model", "update", "image_generation", "Deliberate", "--set", "config.download.0.sha256sum=zz",
                "--data", str(data_copy))
    assert r.returncode == 1
    assert r.stderr.startswith("error: refused, nothing written: ") and "sha256sum must be 64 hex digits" in r.stderr
    assert "Deliberate.yaml:/config/download/0/sha256sum" in r.stderr
    assert tree_digest(data_copy) == before


def test_download_entry_and_its_flags(hmr_in_process: Callable[..., subprocess.CompletedProcess]) -> None:
    assert crud.Download("https://example.org/a/My%20Model.ckpt?x=1").entry() == {
        "file_name": "My Model.ckpt", "file_url": "https://example.org/a/My%20Model.ckpt?x=1"}
    assert crud.Download(URL, "f.bin", SHA, 5).entry() == {"file_name": "f.bin", "file_url": URL, "sha256sum": SHA,
                                                            "size_bytes": 5}
    r = hmr_in_process("model", "add", "image_generation", "X", "--sha256", SHA, "--data", str(ROOT / "data"))
    assert r.returncode == 2 and "give --url too" in r.stderr  # a usage error: nothing is tried
    r = hmr_in_process("model", "update", "image_generation", "X", "--set", "novalue", "--data", str(ROOT / "data"))
    assert r.returncode == 2 and "expected FIELD=VALUE" in r.stderr
