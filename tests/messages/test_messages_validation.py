"""Validation messages say what would be right: "did you mean" and the valid values of short vocabularies."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from builder.validate import schema_problems

IMAGE = "image_generation/Example Model.yaml"
BASELINES = ("infer, stable_diffusion_1, stable_diffusion_2_768, stable_diffusion_2_512, stable_diffusion_xl, "
             "stable_cascade, flux_1, flux_schnell, flux_dev, qwen_image, z_image_turbo")
STYLES = "generalist, anime, furry, artistic, other, realistic"


def _edit(data: Path, **fields: object) -> Path:
    """Change fields of the fixture image record (None removes one); its path."""
    path = data / IMAGE
    record = yaml.safe_load(path.read_text())
    for k, v in fields.items():
        if v is None:
            record.pop(k, None)
        else:
            record[k] = v
    path.write_text(yaml.safe_dump(record, sort_keys=False))
    return path


def _stderr(hmr: Callable[..., subprocess.CompletedProcess], data: Path) -> list[str]:
    r = hmr("validate", "--data", str(data))
    assert r.returncode == 1, (r.stdout, r.stderr)
    return r.stderr.splitlines()


def test_misspelt_field_gets_did_you_mean(hmr: Callable[..., subprocess.CompletedProcess], data: Path) -> None:
    path = _edit(data, nsfw=None, nsfww=False)
    assert _stderr(hmr, data) == [
        f"{path}:: 'nsfw' is required",
        f"{path}:: unknown field 'nsfww' (did you mean 'nsfw'?)",
        "error: 2 validation error(s)",
    ]


def test_unknown_fields_get_a_hint_each_where_one_is_close(data: Path) -> None:
    rec = yaml.safe_load((data / IMAGE).read_text())
    rec.update(colour="red", homepagе="https://example.org/x", nsfww=True)  # the е is Cyrillic
    assert [p.message for p in schema_problems("f", "image_generation", rec)] == [
        "unknown field 'colour', 'homepagе', 'nsfww'; 'homepagе': did you mean 'homepage'?; "
        "'nsfww': did you mean 'nsfw'?",
    ]


def test_unknown_field_far_from_every_name_lists_no_guess(data: Path) -> None:
    rec = yaml.safe_load((data / IMAGE).read_text())
    rec["worker_count"] = 3
    assert [p.message for p in schema_problems("f", "image_generation", rec)] == ["unknown field 'worker_count'"]


def test_unknown_baseline_suggests_and_lists_the_canonical_ones(hmr: Callable[..., subprocess.CompletedProcess],
                                                              data: Path) -> None:
    path = _edit(data, baseline="sdxl")
    assert _stderr(hmr, data) == [
        f"{path}:/baseline: unknown baseline 'sdxl' (did you mean 'SDXL'? valid: {BASELINES})",
        "error: 1 validation error(s)",
    ]


def test_unknown_baseline_with_nothing_close_still_lists_the_valid_ones(data: Path) -> None:
    rec = yaml.safe_load((data / IMAGE).read_text())
    rec["baseline"] = "kandinsky"
    assert [p.message for p in schema_problems("f", "image_generation", rec)] == [
        f"unknown baseline 'kandinsky' (valid: {BASELINES})",
    ]


def test_unknown_style_suggests_and_lists_the_styles(hmr: Callable[..., subprocess.CompletedProcess],
                                                    data: Path) -> None:
    path = _edit(data, style="Anime")
    assert _stderr(hmr, data) == [
        f"{path}:/style: unknown style 'Anime' (did you mean 'anime'? valid: {STYLES})",
        "error: 1 validation error(s)",
    ]


def test_long_vocabulary_names_where_the_list_is() -> None:
    rec = {"name": "x", "controlnet_style": "control_cany"}
    assert [p.message for p in schema_problems("f", "controlnet", rec)] == [
        "unknown controlnet_style 'control_cany' (did you mean 'control_canny'? "
        "valid: see schemas/controlnet.schema.json)",
    ]
