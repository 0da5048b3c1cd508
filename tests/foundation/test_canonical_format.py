"""canonical_format = legacy: data/ holds the legacy files and v2 is derived from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import canonical_format
from builder.errors import HmrError
from tests.helpers import LEGACY_CURRENT, run_hmr


def test_default_is_v2_and_setting_is_read_from_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORDE_MODEL_REFERENCE_CANONICAL_FORMAT", raising=False)
    assert canonical_format(tmp_path) == "v2"
    (tmp_path / "pyproject.toml").write_text('[tool.hmr]\ncanonical_format = "LEGACY"\n')
    (tmp_path / "data").mkdir()
    assert canonical_format(tmp_path / "data") == "legacy"
    monkeypatch.setenv("HORDE_MODEL_REFERENCE_CANONICAL_FORMAT", "v2")
    assert canonical_format(tmp_path / "data") == "v2"
    monkeypatch.setenv("HORDE_MODEL_REFERENCE_CANONICAL_FORMAT", "yaml")
    with pytest.raises(HmrError, match="canonical_format 'yaml'"):
        canonical_format(tmp_path)


def test_legacy_canonical_build_equals_the_v2_canonical_build(corpus_site: Path, tmp_path: Path) -> None:
    env = {"HORDE_MODEL_REFERENCE_CANONICAL_FORMAT": "legacy"}
    r = run_hmr("validate", "--data", str(LEGACY_CURRENT), env=env)
    assert r.returncode == 0, r.stderr
    site = tmp_path / "site"
    r = run_hmr("build", "--data", str(LEGACY_CURRENT), "--out", str(site), env=env)
    assert r.returncode == 0, r.stderr
    for rel in ("legacy/stable_diffusion.json", "legacy/db.json", "legacy/esrgan.json",
                "api/model_references/v2/image_generation.json", "api/model_references/v2/text_generation.json",
                "api/model_references/v2/controlnet.json"):
        assert (site / rel).read_bytes() == (corpus_site / rel).read_bytes(), rel


def test_legacy_canonical_reports_the_legacy_file(tmp_path: Path) -> None:
    (tmp_path / "esrgan.json").write_text('{"x": {"name": "x", "config": {"files": [], "download": [{"file_name": 1}]}}}')
    r = run_hmr("build", "--data", str(tmp_path), "--out", str(tmp_path / "site"),
                env={"HORDE_MODEL_REFERENCE_CANONICAL_FORMAT": "legacy"})
    assert r.returncode == 1
    assert f"{tmp_path / 'esrgan.json'}:: esrgan.json: x: /config/download/0" in r.stderr
    assert not (tmp_path / "site").exists()
