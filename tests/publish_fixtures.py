"""Session fixtures of the publishing tests, registered by `pytest_plugins = ["tests.publish_fixtures"]` in
each tests/test_publish_*.py: the corpus site (generation 1, from conftest's `corpus_site`) and builds of
edited copies of its data that continue its generation count (2)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.site.manifest import MANIFEST_FILE
from tests.conftest import LEGACY_CURRENT
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


#: the legacy files of the small site: four image-repo utility files (9 models), so that the many
#: first deploys of these tests stay cheap; the corpus site is deployed once, in full
SMALL_FILES = ("esrgan.json", "gfpgan.json", "codeformer.json", "safety_checker.json")


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from builder.legacy.importer import import_legacy

    base = tmp_path_factory.mktemp("small")
    (base / "legacy").mkdir()
    for name in SMALL_FILES:
        shutil.copyfile(LEGACY_CURRENT / name, base / "legacy" / name)
    import_legacy(str(base / "legacy"), base / "data")
    return base / "data"


@pytest.fixture(scope="session")
def small_site(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generation 1 of the small data set."""
    from builder.site.build import build

    site = tmp_path_factory.mktemp("small-site") / "site"
    build(small_data, site)
    return site


@pytest.fixture(scope="session")
def small_site_changed(small_data: Path, small_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generation 2 of the small data set: one esrgan model's description changed."""
    return build_edited(small_data, small_site, tmp_path_factory.mktemp("small-site-changed"),
                        [(ESRGAN_MODEL, "Specialised anime upscaler, now described differently")])


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
