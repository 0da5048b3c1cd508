"""Command messages: category names and aliases, the flag hints of `hmr model add`, the data
directory, the build summary, the busy port."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import api, categories
from builder.errors import EditRefused
from tests.helpers import run_hmr

KNOWN = ("blip, clip, codeformer, controlnet, controlnet_annotator, esrgan, gfpgan, safety_checker, "
         "image_generation, text_generation, video_generation, audio_generation, miscellaneous, lora, ti")
Hmr = Callable[..., subprocess.CompletedProcess]


def test_misspelt_category_gets_did_you_mean(hmr: Hmr, data: Path) -> None:
    r = hmr("model", "add", "image_generaton", "X", "--sfw", "--data", str(data))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"error: unknown category 'image_generaton' (did you mean 'image_generation'? known: {KNOWN})\n"


def test_category_far_from_every_name_lists_them_all() -> None:
    with pytest.raises(KeyError) as e:
        categories.get("sampler")
    assert e.value.args[0] == f"unknown category 'sampler' (known: {KNOWN})"


def test_v1_alias_is_a_category_name_for_every_model_command(hmr: Hmr, data: Path) -> None:
    assert categories.get("stable_diffusion").name == "image_generation"
    r = hmr("model", "add", "stable_diffusion", "New One", "--baseline", "stable_diffusion_1", "--sfw",
            "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"added image_generation/New One ({data / 'image_generation' / 'New One.yaml'})\n"
    r = hmr("model", "update", "stable_diffusion", "New One", "--set", "nsfw=true", "--data", str(data))
    assert r.returncode == 0, r.stderr
    r = hmr("model", "rename", "stable_diffusion", "New One", "Newer", "--data", str(data))
    assert r.returncode == 0, r.stderr
    r = hmr("model", "remove", "stable_diffusion", "Newer", "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert not list((data / "image_generation").glob("New*"))


def test_model_add_names_the_flag_of_a_missing_field(hmr: Hmr, data: Path) -> None:
    r = hmr("model", "add", "image_generation", "X", "--baseline", "stable_diffusion_1", "--data", str(data))
    assert r.returncode == 1
    path = data / "image_generation" / "X.yaml"
    assert r.stderr == f"error: refused, nothing written: {path}:: 'nsfw' is required (pass --nsfw or --sfw)\n"
    r = hmr("model", "add", "image_generation", "X", "--data", str(data))
    assert r.stderr == (f"error: refused, nothing written: {path}:: 'baseline' is required (pass --baseline) "
                        f"(and 1 more)\n  {path}:: 'nsfw' is required (pass --nsfw or --sfw)\n")
    assert not path.exists()


def test_python_api_speaks_of_fields_not_flags(data: Path) -> None:
    with pytest.raises(EditRefused) as e:
        api.add_model(data, "image_generation", "X", {"baseline": "stable_diffusion_1"})
    assert str(e.value) == f"refused, nothing written: {data / 'image_generation' / 'X.yaml'}:: 'nsfw' is required"


@pytest.mark.parametrize("command", ["build", "validate"])
def test_missing_data_directory_is_one_line_saying_what_to_do(command: str, tmp_path: Path) -> None:
    r = run_hmr(command, cwd=tmp_path)  # the installed command, from a folder without data/
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "error: data directory not found: data (run from the repository root or pass --data DIR)\n"
    assert sorted(tmp_path.iterdir()) == []


def test_build_ends_with_models_output_and_next_step(hmr: Hmr, data: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = hmr("build", "--data", str(data))
    assert r.returncode == 0, r.stderr
    files, models, where = r.stdout.splitlines()
    n = sum(1 for p in (tmp_path / "site").rglob("*") if p.is_file())
    assert files == f"{n} files: {n} written, 0 removed, 0 unchanged"
    assert models == "3 models: esrgan 1, image_generation 1, text_generation 1"
    assert where == "site written to site/; preview it with `hmr serve`"
    out = tmp_path / "elsewhere"
    r = hmr("build", "--data", str(data), "--out", str(out))
    assert r.stdout.splitlines()[2] == f"site written to {out}/; preview it with `hmr serve --site {out}`"


def test_serve_names_the_busy_port(hmr: Hmr, data: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = hmr("serve", "--site", str(site), "--port", str(port))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"error: port {port} is in use (pass --port N)\n"
