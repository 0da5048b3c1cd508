"""The package's schemas (what a build publishes) and the repository's `schemas/` (what editors read
through the data files' `$schema` hint) are the same files."""

from __future__ import annotations

from pathlib import Path

from builder.schemas import mirror
from tests.helpers import ROOT

PACKAGED = ROOT / "builder" / "site" / "schemas"


def files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.json"))}


def test_the_repository_schemas_mirror_the_package_ones() -> None:
    packaged = files(PACKAGED)
    assert len(packaged) >= 16 and "manifest.schema.json" in packaged
    assert files(ROOT / "schemas") == packaged, "schemas/ differs from builder/site/schemas/: run python -m builder.schemas"


def test_mirror_copies_changed_files_and_removes_stale_ones(tmp_path: Path) -> None:
    dest = tmp_path / "schemas"
    assert sorted(mirror(PACKAGED, dest)) == sorted(files(PACKAGED))
    assert files(dest) == files(PACKAGED)
    (dest / "clip.schema.json").write_text("{}")
    (dest / "gone.schema.json").write_text("{}")
    assert mirror(PACKAGED, dest) == ["clip.schema.json", "gone.schema.json"]
    assert files(dest) == files(PACKAGED)
    assert mirror(PACKAGED, dest) == []
