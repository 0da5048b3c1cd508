"""The replica client's configuration (the existing library's variables, same names and meanings, plus
ours), its read API (read-only mappings, errors, async twins), offline mode, and the `hmr get` /
`hmr source-info` commands, against the corpus site served by nginx."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.categories import NAMES
from builder.replica import ConfigError, ModelNotFound, ReplicaClient, ReplicaConfig, SourceUnavailable, thaw
from builder.replica.config import ENV_VARS
from builder.signing import public_bytes
from tests.helpers import ROOT
from tests.replica_support import client_env_free, dead_url
from tests.site_support import Nginx, run_hmr


def api(nginx: Nginx) -> str:
    return f"http://127.0.0.1:{nginx.port}/api"


def site_v2(site_dir: Path, category: str) -> dict:
    return json.loads((site_dir / f"api/model_references/v2/{category}.json").read_bytes())


# ---------------------------------------------------------------------------------------------------
# configuration


def test_defaults_are_the_existing_librarys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cfg = ReplicaConfig.from_env({})
    assert cfg.primary_api_url == "https://models.aihorde.net/api"
    assert cfg.cache_ttl_seconds == 60 and cfg.timeout == 10
    assert cfg.enable_github_fallback is True and cfg.offline is False
    assert (cfg.image_github_repo.owner, cfg.image_github_repo.name, cfg.image_github_repo.branch) == (
        "Haidra-Org", "AI-Horde-image-model-reference", "main")
    assert cfg.text_github_repo.name == "AI-Horde-text-model-reference"
    assert cfg.github_raw_url == "https://raw.githubusercontent.com"
    assert cfg.mirror_urls == () and cfg.trusted_keys == ()
    # AIWORKER_CACHE_HOME unset: the platform cache directory
    assert cfg.cache_dir == tmp_path / "horde_model_reference" / "replica"
    assert cfg.cooldown == 60


def test_environment_variables(tmp_path: Path) -> None:
    key = base64.b64encode(public_bytes(Ed25519PrivateKey.generate().public_key())).decode()
    env = {
        "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": "https://cdn.example/api/",
        "HORDE_MODEL_REFERENCE_MIRROR_URLS": "https://m1.example/api, https://m2.example/api",
        "HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS": "5",
        "HORDE_MODEL_REFERENCE_PRIMARY_API_TIMEOUT": "2.5",
        "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "False",
        "horde_model_reference_offline": "1",
        "HORDE_MODEL_REFERENCE_TEXT_GITHUB_REPO__OWNER": "someone",
        "HORDE_MODEL_REFERENCE_TEXT_GITHUB_REPO__BRANCH": "dev",
        "HORDE_MODEL_REFERENCE_GITHUB_RAW_URL": "https://ghproxy.example/https://raw.githubusercontent.com/",
        "HORDE_MODEL_REFERENCE_TRUSTED_KEYS": key,
        "AIWORKER_CACHE_HOME": str(tmp_path),
    }
    cfg = ReplicaConfig.from_env(env)
    assert cfg.primary_api_url == "https://cdn.example/api"
    assert cfg.mirror_urls == ("https://m1.example/api", "https://m2.example/api")
    assert cfg.site_urls == ("https://cdn.example/api", "https://m1.example/api", "https://m2.example/api")
    assert (cfg.cache_ttl_seconds, cfg.timeout, cfg.enable_github_fallback, cfg.offline) == (5, 2.5, False, True)
    assert (cfg.text_github_repo.owner, cfg.text_github_repo.name, cfg.text_github_repo.branch) == (
        "someone", "AI-Horde-text-model-reference", "dev")
    assert cfg.github_raw_url == "https://ghproxy.example/https://raw.githubusercontent.com"
    assert cfg.trusted_keys == (key,)
    assert cfg.base_path == tmp_path / "horde_model_reference"
    # a JSON list works for the mirrors too; constructor arguments win over the environment
    cfg = ReplicaConfig.from_env({**env, "HORDE_MODEL_REFERENCE_MIRROR_URLS": '["https://m3.example/api"]'},
                                 timeout=7, offline=False, primary_api_url=None)
    assert cfg.mirror_urls == ("https://m3.example/api",)
    assert (cfg.timeout, cfg.offline, cfg.primary_api_url) == (7, False, None)
    assert ReplicaConfig.from_env({"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": "null"}).primary_api_url is None


@pytest.mark.parametrize(("name", "value"), [
    ("HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS", "soon"),
    ("HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS", "-1"),
    ("HORDE_MODEL_REFERENCE_PRIMARY_API_TIMEOUT", "0"),
    ("HORDE_MODEL_REFERENCE_OFFLINE", "maybe"),
    ("HORDE_MODEL_REFERENCE_PRIMARY_API_URL", "ftp://cdn.example/api"),
    ("HORDE_MODEL_REFERENCE_MIRROR_URLS", "cdn.example"),
    ("HORDE_MODEL_REFERENCE_GITHUB_RAW_URL", "raw.githubusercontent.com"),
    ("HORDE_MODEL_REFERENCE_TRUSTED_KEYS", "bm90IGEga2V5"),
])
def test_bad_values_fail_at_construction_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        ReplicaClient(env={name: value})
    assert name in str(e.value)


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError):
        ReplicaClient(env={}, cache_tll_seconds=3)


def test_every_variable_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Replica client"):]
    for name in ENV_VARS:
        assert f"`{name}`" in section, name


# ---------------------------------------------------------------------------------------------------
# the read API


def test_read_api(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    client = ReplicaClient(env={}, primary_api_url=api(nginx), cache_home=tmp_path, enable_github_fallback=False)
    image = client.get_model_reference("image_generation")
    with pytest.raises(TypeError):
        image["new"] = {}  # type: ignore[index]
    record = client.get_model("image_generation", "stable_diffusion")
    with pytest.raises(TypeError):
        record["name"] = "x"  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        record["config"]["download"].append({})  # nested values are read-only too
    assert thaw(record) == site_v2(site_dir, "image_generation")["stable_diffusion"]
    with pytest.raises(ModelNotFound) as e:
        client.get_model("image_generation", "no such model")
    assert isinstance(e.value, KeyError) and "no such model" in str(e.value)
    assert client.get_model_or_none("image_generation", "no such model") is None
    with pytest.raises(ValueError):
        client.get_model_reference("not_a_category")
    with pytest.raises(ValueError):
        client.get_legacy("video_generation")  # no legacy format

    class Enum:  # the existing library's StrEnum members are accepted as they are
        value = "clip"

    assert thaw(client.get_model_reference(Enum())) == site_v2(site_dir, "clip")
    everything = client.get_all_model_references()
    assert list(everything) == list(NAMES)
    for cat in NAMES:
        assert thaw(everything[cat]) == site_v2(site_dir, cat), cat
    with pytest.raises(TypeError):
        everything["clip"] = {}  # type: ignore[index]


def test_async_twins(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    client = ReplicaClient(env={}, primary_api_url=api(nginx), cache_home=tmp_path, enable_github_fallback=False)

    async def main() -> tuple:
        image, text, legacy = await asyncio.gather(client.get_model_reference_async("image_generation"),
                                                   client.get_model_reference_async("text_generation"),
                                                   client.get_legacy_async("clip"))
        rec = await client.get_model_async("image_generation", "stable_diffusion")
        missing = await client.get_model_or_none_async("image_generation", "nope")
        everything = await client.get_all_model_references_async()
        await client.refresh_async(["clip"])
        return image, text, legacy, rec, missing, everything

    image, text, legacy, rec, missing, everything = asyncio.run(main())
    assert thaw(image) == site_v2(site_dir, "image_generation")
    assert thaw(text) == site_v2(site_dir, "text_generation")
    assert legacy == (site_dir / "api/model_references/v1/clip.json").read_bytes()
    assert rec["name"] == "stable_diffusion" and missing is None
    assert set(everything) == set(NAMES)

    dead = ReplicaClient(env={}, primary_api_url=dead_url(), cache_home=tmp_path / "empty",
                         enable_github_fallback=False)
    assert asyncio.run(dead.get_model_reference_or_none_async("image_generation")) is None
    assert asyncio.run(dead.get_legacy_or_none_async("image_generation")) is None
    with pytest.raises(SourceUnavailable):
        asyncio.run(dead.get_model_reference_async("image_generation"))


def test_offline_reads_only_the_cache(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    online = ReplicaClient(env={}, primary_api_url=api(nginx), cache_home=tmp_path, enable_github_fallback=False)
    online.get_model_reference("image_generation")
    # a worker subprocess: offline, the same cache folder, a CDN URL that would refuse connections
    env = {"HORDE_MODEL_REFERENCE_OFFLINE": "true", "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": dead_url(),
           "AIWORKER_CACHE_HOME": str(tmp_path)}
    offline = ReplicaClient(env=env)
    assert thaw(offline.get_model_reference("image_generation")) == site_v2(site_dir, "image_generation")
    assert offline.get_model_reference_or_none("text_generation") is None  # never fetched by the parent
    assert offline.source_info()["this_process"]["requests"] == 0
    assert offline.source_info()["offline"] is True


def test_a_stuck_refresh_elsewhere_does_not_block_readers(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    from builder.replica.cache import DiskCache

    settings = dict(env={}, primary_api_url=api(nginx), cache_home=tmp_path, enable_github_fallback=False,
                    cache_ttl_seconds=0, lock_timeout=0.3)
    good = thaw(ReplicaClient(**settings).get_model_reference("image_generation"))
    with DiskCache(ReplicaClient(**settings).config.cache_dir, 5).lock():  # another process, stuck mid-refresh
        t = time.monotonic()
        client = ReplicaClient(**settings)
        records = client.get_model_reference("image_generation")
        assert time.monotonic() - t < 2
    assert thaw(records) == good
    assert client.source_info()["this_process"]["requests"] == 0


def test_unwritable_cache_folder_keeps_working_in_memory(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    client = ReplicaClient(env={}, primary_api_url=api(nginx), cache_home=blocker, enable_github_fallback=False,
                           cache_ttl_seconds=0)
    assert thaw(client.get_model_reference("image_generation")) == site_v2(site_dir, "image_generation")
    client.get_model_reference("image_generation")  # TTL 0: checks again, conditionally, from memory state
    info = client.source_info()
    assert "not writable" in info["cache_error"]
    assert info["sources"][api(nginx)]["last_status"] == 304
    assert info["categories"]["image_generation"]["source"] == "cdn"


# ---------------------------------------------------------------------------------------------------
# the CLI


def cli_env(nginx: Nginx, home: Path, **extra: str) -> dict[str, str]:
    env = client_env_free()
    env.update({"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": api(nginx), "AIWORKER_CACHE_HOME": str(home),
                "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false"})
    env.update(extra)
    return env


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def hmr_in_process(*args: str, env: dict[str, str]) -> _Result:
    """The CLI in this process (the installed command is run once below, and by the C1 check)."""
    from click.testing import CliRunner

    from builder.cli import main

    unset = {k: None for k in os.environ if k.upper().startswith("HORDE_MODEL_REFERENCE_")}
    r = CliRunner().invoke(main, list(args), env={**unset, **env})
    return _Result(r.exit_code, r.stdout, r.stderr)


def test_cli_get_and_source_info(nginx: Nginx, site_dir: Path, tmp_path: Path) -> None:
    env = cli_env(nginx, tmp_path)
    r = run_hmr("get", "image_generation", env=env)  # the real command, in its own process
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == site_v2(site_dir, "image_generation")
    assert r.stderr == ""  # from the CDN: nothing to note
    env = {k: v for k, v in env.items() if k.upper().startswith(("HORDE_MODEL_REFERENCE_", "AIWORKER_"))}
    # the rest in this process, with the same arguments
    r = hmr_in_process("get", "text_generation", "--model", "acrastt/Marx-3B-V3", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == site_v2(site_dir, "text_generation")["acrastt/Marx-3B-V3"]
    r = hmr_in_process("get", "image_generation", "--legacy", env=env)
    assert r.returncode == 0 and r.stdout.encode() == (site_dir / "api/model_references/v1/image_generation.json"
                                                       ).read_bytes()
    r = hmr_in_process("get", "clip", "--legacy", "--model", "ViT-L/14", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "ViT-L/14"
    r = hmr_in_process("source-info", env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["categories"]["image_generation"]["source"] == "cdn"
    assert info["generation"] == json.loads((site_dir / "api/model_references/v2/manifest.json").read_bytes())[
        "generation"]
    assert info["legacy"]["image_generation"]["models"] == 161

    # the CDN goes away: the cache answers, and stderr says so in one line
    dead_env = cli_env(nginx, tmp_path, HORDE_MODEL_REFERENCE_PRIMARY_API_URL=dead_url(),
                       HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS="0")
    r = hmr_in_process("get", "image_generation", "--model", "stable_diffusion", env=dead_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "stable_diffusion"
    assert r.stderr.startswith("note: served from cache") and "connection failed" in r.stderr

    # errors: one line, exit 1
    for args in (["get", "no_such_category"], ["get", "image_generation", "--model", "nope"],
                 ["get", "video_generation", "--legacy"]):
        r = hmr_in_process(*args, env=env)
        assert r.returncode == 1 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, args
    r = hmr_in_process("get", "image_generation", env=cli_env(nginx, tmp_path / "empty",
                                                        HORDE_MODEL_REFERENCE_PRIMARY_API_URL=dead_url()))
    assert r.returncode == 1 and "no source available" in r.stderr and "Traceback" not in r.stderr
