"""Session fixtures of the publishing tests: the corpus site (generation 1, from conftest's `corpus_site`)
and builds of edited copies of its data that continue its generation count (2)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.routes import MANIFEST_FILE
from tests.publish_support import Rclone

#: the model the one-change build edits (an image-repo utility model: esrgan.json)
ESRGAN_MODEL = "esrgan/4x_AnimeSharp.yaml"
#: the text model the two-change build also edits (models.csv, db.json)
TEXT_MODEL = "text_generation/acrastt/Marx-3B-V3.yaml"


def edit_description(data: Path, rel: str, text: str) -> None:
    path = data / rel
    src = path.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^description: .*$", f"description: {text}", src, count=1)
    assert n == 1, f"{rel} has no description line"
    path.write_text(new, encoding="utf-8")


def build_edited(corpus_data: Path, corpus_site: Path, base: Path, edits: list[tuple[str, str]]) -> Path:
    """Build a copy of the corpus data with `edits` applied, continuing the corpus site's generation."""
    from builder.site.build import build

    data = base / "data"
    shutil.copytree(corpus_data, data)
    for rel, text in edits:
        edit_description(data, rel, text)
    site = base / "site"
    build(data, site, previous_manifest=(corpus_site / MANIFEST_FILE).read_bytes())
    return site


def _in_mini(rel: str) -> bool:
    """The files of a mini site: the image-repo legacy files and everything of two categories."""
    if rel.startswith("legacy/"):
        return rel.endswith(".json") and rel not in ("legacy/db.json", "legacy/defaults.json",
                                                     "legacy/generation_params.json")
    return "/esrgan" in rel or "/gfpgan" in rel


def make_mini_site(src: Path, dest: Path, previous: bytes | None) -> Path:
    """A site holding a slice of the built site `src` (about 40 files: the image-repo legacy files and
    every file of esrgan and gfpgan, per-model keys under their category keys included) with its own
    manifest, continuing `previous`. A deploy publishes whatever a site folder's manifest and route
    table say, so a slice tests the deploy as a whole build does, at a tenth of the requests (the
    corpus build itself is deployed in full by test_publish_cdn.py)."""
    from builder.site.manifest import make_manifest

    files = {}
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src).as_posix()
        if p.is_file() and _in_mini(rel):
            files[rel] = p.read_bytes()
    manifest, _warnings = make_manifest(files, previous, None, 1_750_000_000.0)
    files[MANIFEST_FILE] = manifest
    for rel, data in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


@pytest.fixture(scope="session")
def mini_site(corpus_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generation 1: a slice of the corpus site."""
    return make_mini_site(corpus_site, tmp_path_factory.mktemp("mini-site") / "site", None)


@pytest.fixture(scope="session")
def mini_site_changed(mini_site: Path, site_two_changes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generation 2: the same slice of a build where one esrgan model's description changed."""
    return make_mini_site(site_two_changes, tmp_path_factory.mktemp("mini-site-changed") / "site",
                          (mini_site / MANIFEST_FILE).read_bytes())


@pytest.fixture(scope="session")
def site_two_changes(corpus_data: Path, corpus_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generation 2: the esrgan change plus one text model's description (models.csv, db.json)."""
    return build_edited(corpus_data, corpus_site, tmp_path_factory.mktemp("site-two-changes"),
                        [(ESRGAN_MODEL, "Specialised anime upscaler, now described differently"),
                         (TEXT_MODEL, "StableLM 3B 4E1T fine-tuned on EverythingLM V3 (edited by a test)")])


@pytest.fixture(scope="module")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rclone]:
    """`rclone serve s3` with credentials, over a fresh directory (one per test module)."""
    server = Rclone(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        server.stop()
