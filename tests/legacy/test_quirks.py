"""Each quirk upstream published imports, validates (a warning, never an error) and comes back."""

from __future__ import annotations

import json

import pytest

from builder.errors import ValidationFailed
from builder.load import load_valid
from tests.legacy.conftest import dumps4


def _sd(name: str, **extra: object) -> dict:
    rec = {"name": name, "baseline": "stable diffusion 1", "type": "ckpt", "inpainting": False,
           "description": "d", "version": "1", "style": "generalist", "nsfw": False, "download_all": False,
           "config": {"files": [{"path": f"{name}.ckpt", "sha256sum": "a" * 64}],
                      "download": [{"file_name": f"{name}.ckpt", "file_path": "",
                                    "file_url": "https://example.org/m.ckpt"}]},
           "available": False}
    rec.update(extra)
    return rec


def test_download_matching_no_config_file(round_trip) -> None:
    """A download whose file_name no `config.files` entry lists (clip's `main`) survives."""
    rec = _sd("A")
    rec["config"]["download"].append({"file_name": "main", "file_path": "", "file_url": "https://example.org/x"})
    raw = dumps4({"A": rec})
    built, _ = round_trip({"stable_diffusion.json": raw})
    assert built["stable_diffusion.json"] == raw


def test_extra_config_key_kept_in_place(round_trip) -> None:
    """A 2023 record held `config.showcases` before `files`: value and key order come back."""
    rec = _sd("B")
    rec["config"] = {"showcases": ["https://example.org/s.webp"], **rec["config"]}
    raw = dumps4({"B": rec})
    built, _ = round_trip({"stable_diffusion.json": raw})
    assert built["stable_diffusion.json"] == raw


def test_path_like_download_name_is_a_warning_unless_strict(round_trip, tmp_path, monkeypatch) -> None:
    """Upstream's clip records download a folder name; imported, that warns; strict mode refuses it."""
    rec = {"name": "ViT-H-14", "type": "clip", "config": {
        "files": [{"path": "models--laion--x/"}],
        "download": [{"file_name": "models--laion--x/", "file_path": "", "file_url": "https://example.org/c"}]},
        "available": False}
    raw = (json.dumps({"ViT-H-14": rec}, indent="\t") + "\n").encode()
    built, warnings = round_trip({"clip.json": raw})
    assert built["clip.json"] == raw
    assert any("must be a plain file name" in str(w) and w.severity == "warning" for w in warnings)
    monkeypatch.setenv("HMR_STRICT_LEGACY", "1")
    with pytest.raises(ValidationFailed) as info:
        load_valid(tmp_path / "data")
    assert any("plain file name" in p.message and p.severity == "error" for p in info.value.problems)


def test_unknown_controlnet_style_is_a_warning(round_trip) -> None:
    """Old controlnet files said `type: controlnet`; upstream's policy for the style is a warning."""
    rec = {"name": "ControlNet - Canny", "type": "controlnet", "config": {
        "files": [{"path": "c.pth", "sha256sum": "b" * 64}],
        "download": [{"file_name": "c.pth", "file_path": "", "file_url": "https://example.org/c.pth"}]}}
    raw = (json.dumps({"ControlNet - Canny": rec}, indent="\t") + "\n").encode()
    built, warnings = round_trip({"controlnet.json": raw})
    assert built["controlnet.json"] == raw
    assert any("unknown controlnet_style" in str(w) for w in warnings)


def test_config_without_files_list(round_trip) -> None:
    """SDXL 1.0 was once published with `config.download` only (hashes on the download)."""
    rec = _sd("SDXL 1.0")
    rec["config"] = {"download": [{"file_name": "x.safetensors", "file_path": "",
                                   "file_url": "https://example.org/x", "sha256sum": "c" * 64}]}
    raw = dumps4({"SDXL 1.0": rec})
    built, _ = round_trip({"stable_diffusion.json": raw})
    assert built["stable_diffusion.json"] == raw


def test_two_keys_sharing_a_name_warn(round_trip) -> None:
    """An esrgan version listed a second key under an existing record's name."""
    def rec(name: str) -> dict:
        return {"name": name, "type": "realesrgan", "config": {
            "files": [{"path": f"{name}.pth", "sha256sum": "d" * 64}],
            "download": [{"file_name": f"{name}.pth", "file_path": "", "file_url": "https://example.org/e"}]}}
    raw = (json.dumps({"R": rec("R"), "S": {**rec("S"), "name": "R"}}, indent="\t") + "\n").encode()
    built, warnings = round_trip({"esrgan.json": raw})
    assert built["esrgan.json"] == raw
    assert any("is also used by key" in str(w) for w in warnings)


# ---- layout quirks: kept in `_category.yaml` (`legacy_layout`) or the record's legacy block, each a
# warning with its pointer, an error under the strict mode

_HEADER = "name,parameters_bn,display_name,url,baseline,description,style,tags,instruct_format,settings"


def _quirk_warnings(warnings: list) -> list:
    return [w for w in warnings if w.message.startswith("import quirk")]


@pytest.mark.parametrize("crlf,quirk", [(False, "final_newline"), (True, "line_ending")])
def test_json_layout_kept(round_trip, crlf: bool, quirk: str) -> None:
    """A machine-formatted file without its final newline, or with CRLF line endings, comes back
    byte for byte; the quirk is a warning pointing into the category settings."""
    body = json.dumps({"A": _sd("A")}, indent=4)
    raw = (body.replace("\n", "\r\n") + "\r\n").encode() if crlf else body.encode()
    built, warnings = round_trip({"stable_diffusion.json": raw})
    assert built["stable_diffusion.json"] == raw
    found = _quirk_warnings(warnings)
    assert [w.pointer for w in found] == [f"/legacy_layout/{quirk}"]
    assert found[0].file.endswith("_category.yaml") and found[0].severity == "warning"


def test_csv_duplicate_rows_kept_and_the_last_one_counts(round_trip) -> None:
    """A repeated name: every row comes back in place; the model (and db.json) has the last values."""
    rows = [_HEADER, "a/M-7B,7,,,,first,,,,", "b/N-3B,3,,,,,,,,", "a/M-7B,7,,,,second,,,,"]
    raw = ("\r\n".join(rows) + "\r\n").encode()
    built, warnings = round_trip({"models.csv": raw})
    assert built["models.csv"] == raw
    db = json.loads(built["db.json"])
    assert list(db)[:3] == ["a/M-7B", "aphrodite/a/M-7B", "koboldcpp/M-7B"]  # first position ...
    assert db["a/M-7B"]["description"] == "second"  # ... last values, as upstream's convert.py
    assert [w.pointer for w in _quirk_warnings(warnings)] == ["/legacy_layout/extra_rows/0"]


def test_csv_extra_and_missing_cells_kept(round_trip) -> None:
    """A row with a cell too many and one with a cell too few come back; each is a record warning."""
    rows = [_HEADER, "a/M-7B,7,,,,,,,,,surplus", "b/N-3B,3,,,,,,,"]
    raw = ("\r\n".join(rows) + "\r\n").encode()
    built, warnings = round_trip({"models.csv": raw})
    assert built["models.csv"] == raw
    assert sorted(w.pointer for w in _quirk_warnings(warnings)) == ["/legacy/cells", "/legacy/extra_cells"]


@pytest.mark.parametrize("cell", ["176000000000", "13"])
def test_headerless_csv_kept(round_trip, cell: str) -> None:
    """The early files: no header, `name,count` (or `name,billions`), no final newline."""
    raw = f"big/Model,{cell}\r\nkoboldcpp/Model,{cell}\r\nlone/Name".encode()
    built, warnings = round_trip({"models.csv": raw})
    assert built["models.csv"] == raw
    pointers = {w.pointer for w in _quirk_warnings(warnings)}
    assert {"/legacy_layout/header", "/legacy_layout/columns", "/legacy_layout/final_newline"} <= pointers


def test_quirks_are_errors_under_strict_mode(round_trip, tmp_path, monkeypatch) -> None:
    """The pull-request gate (`--strict`, HMR_STRICT_LEGACY) refuses what import keeps as a quirk."""
    round_trip({"codeformer.json": json.dumps({}, indent=4).encode()})
    round_trip({"stable_diffusion.json": json.dumps({"A": _sd("A")}, indent=4).encode()})
    monkeypatch.setenv("HMR_STRICT_LEGACY", "1")
    with pytest.raises(ValidationFailed) as info:
        load_valid(tmp_path / "data")
    assert any(p.pointer == "/legacy_layout/final_newline" and p.severity == "error" for p in info.value.problems)


def test_strict_flag_of_validate_and_build(round_trip, tmp_path) -> None:
    """`hmr validate --strict` and `hmr build --strict` exit 1 on an import quirk; without it, 0."""
    import subprocess
    import sys

    round_trip({"stable_diffusion.json": json.dumps({"A": _sd("A")}, indent=4).encode()})
    data = str(tmp_path / "data")
    ok = subprocess.run([sys.executable, "-m", "builder.cli", "validate", "--data", data], capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert "final_newline" in ok.stdout + ok.stderr
    for cmd in (["validate", "--strict", "--data", data],
                ["build", "--strict", "--data", data, "--out", str(tmp_path / "site")]):
        bad = subprocess.run([sys.executable, "-m", "builder.cli", *cmd], capture_output=True, text=True)
        assert bad.returncode == 1, cmd
        assert "/legacy_layout/final_newline" in bad.stdout + bad.stderr
    assert not (tmp_path / "site").exists()
