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
