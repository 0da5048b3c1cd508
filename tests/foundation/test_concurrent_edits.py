"""Edits never lost: `hmr model` edits of one data folder at the same time are serialized by the
folder's lock, and each reads under it, so every edit that exits 0 is in the files afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.helpers import FIXTURES, HMR, ROOT

KEY = "Example Model"


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*HMR, "model", *args], cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    return data


def test_two_concurrent_updates_of_one_model_both_land(tmp_path: Path) -> None:
    data = _data(tmp_path)
    record = data / "image_generation" / f"{KEY}.yaml"
    for round_ in range(3):
        _finish([_start("update", "image_generation", KEY, "--set", f"description=first {round_}", "--data", str(data)),
                 _start("update", "image_generation", KEY, "--set", f"version=v{round_}", "--data", str(data))])
        doc = yaml.safe_load(record.read_text())
        assert (doc["description"], doc["version"]) == (f"first {round_}", f"v{round_}")
    assert not [p for p in data.iterdir() if p.is_file()]  # no lock file left in data/


def test_concurrent_renames_keep_every_category_entry(tmp_path: Path) -> None:
    data = _data(tmp_path)
    folder = data / "image_generation"
    text = (folder / f"{KEY}.yaml").read_text()
    for other in ("Second", "Third"):
        (folder / f"{other}.yaml").write_text(text.replace(f"name: {KEY}", f"name: {other}"))
    _finish([_start("rename", "image_generation", KEY, "Renamed One", "--data", str(data)),
             _start("rename", "image_generation", "Second", "Renamed Two", "--data", str(data)),
             _start("rename", "image_generation", "Third", "Renamed Three", "--data", str(data))])
    settings = yaml.safe_load((folder / "_category.yaml").read_text())
    assert settings["renames"] == {KEY: "Renamed One", "Second": "Renamed Two", "Third": "Renamed Three"}
    assert sorted(p.stem for p in folder.glob("*.yaml") if p.name != "_category.yaml") == [
        "Renamed One", "Renamed Three", "Renamed Two"]


def test_an_edit_waits_for_the_lock_and_gives_up_in_one_line(tmp_path: Path) -> None:
    from builder.contrib.editlock import folder_lock
    from builder.errors import LockTimeout

    data = _data(tmp_path)
    with folder_lock(data):
        try:
            with folder_lock(data, wait=0.2):
                raise AssertionError("a second holder got the lock")
        except LockTimeout as e:
            assert str(e).startswith(f"{data}: another edit has held this data folder") and "\n" not in str(e)
