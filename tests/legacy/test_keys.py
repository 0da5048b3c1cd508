"""Keys unsafe as a path are stored through the reversible file-name encoding of builder.records."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.records import ENCODED_PREFIX, file_key, key_stem, load, record_path
from tests.legacy.conftest import dumps4

UNSAFE = ["https://huggingface.co/Undi95/Lumimaid-Magnum-12B", "", "..", "a//b", "../../etc/passwd",
          "back\\slash", "_category", "_~already", " padded ", "tab\there", "ünï/cödé//x"]


@pytest.mark.parametrize("key", UNSAFE)
def test_unsafe_key_encodes_flat_and_back(key: str, tmp_path: Path) -> None:
    """Every unsafe key gets one flat name inside its folder, and decodes to itself."""
    stem = key_stem(key)
    assert stem.startswith(ENCODED_PREFIX) and "/" not in stem and "\\" not in stem
    assert file_key(stem) == key
    path = record_path(tmp_path, "text_generation", key, encode=True)
    assert path.parent == tmp_path / "text_generation"


def test_plain_keys_keep_their_path_and_strict_paths_refuse() -> None:
    """Safe keys (sub-folders included) are their own path; without `encode` an unsafe key is refused."""
    assert key_stem("org/model-7B") == "org/model-7B"
    assert file_key("org/model-7B") == "org/model-7B"
    assert file_key(ENCODED_PREFIX + "plain") is None  # never written: "plain" is its own path
    with pytest.raises(ValueError):
        record_path(Path("/x"), "text_generation", "https://a/b")


def test_url_named_text_model_round_trips(round_trip, tmp_path: Path) -> None:
    """A models.csv row named by a URL imports, loads under its key and builds back."""
    header = "name,parameters_bn,display_name,url,baseline,description,style,tags,instruct_format,settings\r\n"
    row = "https://huggingface.co/Undi95/Lumimaid-Magnum-12B,12,,,,,,,,\r\n"
    built, _ = round_trip({"models.csv": (header + row).encode()})
    assert "https://huggingface.co/Undi95/Lumimaid-Magnum-12B" in built["db.json"].decode()
    assert built["models.csv"].decode().replace("\r\n", "\n") == (header + row).replace("\r\n", "\n")
    cats, problems = load(tmp_path / "data")
    assert list(cats["text_generation"].records) == ["https://huggingface.co/Undi95/Lumimaid-Magnum-12B"]
    assert not [p for p in problems if p.severity == "error"]
    files = [p.name for p in (tmp_path / "data" / "text_generation").iterdir()]
    assert any(f.startswith(ENCODED_PREFIX) for f in files)


def test_image_key_with_empty_segment_round_trips(round_trip) -> None:
    """An image key with `//` is not refused either."""
    rec = {"name": "a//b", "baseline": "stable diffusion 1", "type": "ckpt", "inpainting": False,
           "nsfw": False, "download_all": False, "config": {"files": [], "download": []}, "available": False}
    raw = dumps4({"a//b": rec})
    built, _ = round_trip({"stable_diffusion.json": raw})
    assert built["stable_diffusion.json"] == raw
