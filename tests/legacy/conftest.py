"""Fixtures of the legacy-quirk tests: one image-repo file imported, validated and built back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.legacy.convert import legacy_files
from builder.legacy.importer import import_legacy
from builder.load import load_valid


@pytest.fixture
def round_trip(tmp_path: Path) -> Callable[[dict[str, bytes]], tuple[dict, list]]:
    """Import legacy files (name -> bytes) into a fresh data dir; (built legacy files, warnings)."""

    def run(files: dict[str, bytes]) -> tuple[dict, list]:
        src, data = tmp_path / "src", tmp_path / "data"
        src.mkdir(exist_ok=True)
        for name, raw in files.items():
            (src / name).write_bytes(raw)
        summary = import_legacy(str(src), data)
        cats, warnings = load_valid(data)
        built: dict[str, bytes] = {}
        for name in summary.categories:
            built.update(legacy_files(cats[name]))
        return built, warnings

    return run


def dumps4(doc: object) -> bytes:
    """The machine layout of stable_diffusion.json."""
    return (json.dumps(doc, indent=4) + "\n").encode()
