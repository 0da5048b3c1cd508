"""The replica client's configuration (the existing library's variables, same names and meanings, plus
ours), its read API (read-only mappings, errors, async twins), offline mode, and the `hmr get` /
`hmr source-info` commands, against the corpus site served by nginx."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.categories import NAMES
from builder.replica import (
    CategoryError,
    ConfigError,
    ModelNotFound,
    ReplicaClient,
    ReplicaConfig,
    SourceUnavailable,
    thaw,
)
from builder.routes import MANIFEST_FILE, v1_file, v1_key, v2_file, v2_key
from builder.signing import public_bytes
from tests.helpers import run_hmr
from tests.replica.simulator import CDN, CdnSimulator
from tests.replica_support import client_env_free, dead_url
from tests.site_support import Nginx

Make = Callable[..., ReplicaClient]


def api(nginx: Nginx) -> str:
    return f"http://127.0.0.1:{nginx.port}/api"


def site_v2(site_dir: Path, category: str) -> dict:
    return json.loads((site_dir / v2_file(category)).read_bytes())


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


# ---------------------------------------------------------------------------------------------------
# the read API


def test_read_api(replica: Make, sim: CdnSimulator) -> None:
    client = replica()
    image = client.get_model_reference("image_generation")
    with pytest.raises(TypeError):
        image["new"] = {}  # type: ignore[index]
    record = client.get_model("image_generation", "stable_diffusion")
    with pytest.raises(TypeError):
        record["name"] = "x"  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        record["config"]["download"].append({})  # nested values are read-only too
    assert thaw(record) == sim.document("image_generation")["stable_diffusion"]
    with pytest.raises(ModelNotFound) as e:
        client.get_model("image_generation", "no such model")
    assert isinstance(e.value, KeyError) and str(e.value) == "image_generation: no model 'no such model'"
    assert client.get_model_or_none("image_generation", "no such model") is None
    for bad in ("not_a_category", 3):
        with pytest.raises(CategoryError) as ce:
            client.get_model_reference(bad)
        assert isinstance(ce.value, ValueError)
    with pytest.raises(CategoryError, match="video_generation has no legacy"):
        client.get_legacy("video_generation")

    class Enum:  # the existing library's StrEnum members are accepted as they are
        value = "clip"

    assert thaw(client.get_model_reference(Enum())) == sim.document("clip")
    sim.clear()
    everything = client.get_all_model_references()
    assert list(everything) == list(NAMES)
    for cat in NAMES:
        assert thaw(everything[cat]) == sim.document(cat), cat
    with pytest.raises(TypeError):
        everything["clip"] = {}  # type: ignore[index]
    # one refresh for all: the manifest was confirmed within the TTL, the two read before are held
    fetched = [key for _h, key, _s in sim.log()]
    assert len(fetched) == len(NAMES) - 2 and MANIFEST_FILE not in fetched


def test_get_all_returns_empty_for_a_category_no_source_has(replica: Make, sim: CdnSimulator) -> None:
    # lora has no legacy GitHub file: with the CDN failing for it, no source has it (8.6.2 returns
    # what exists instead of raising)
    sim.fail(f"{CDN}/{v2_key('lora')}", 404)
    sim.fail(f"{CDN}/{v2_key('clip')}", 404)
    client = replica(github=True)
    everything = client.get_all_model_references()
    assert list(everything) == list(NAMES)
    assert dict(everything["lora"]) == {}
    assert thaw(everything["clip"]) and thaw(everything["image_generation"]) == sim.document("image_generation")
    with pytest.raises(TypeError):
        everything["lora"]["x"] = {}  # type: ignore[index]
    assert client.get_all_model_references_or_none()["lora"] is None
    info = client.source_info()["categories"]
    assert info["lora"]["source"] is None and "HTTP 404" in info["lora"]["fallback_reason"]
    assert info["clip"]["source"] == "github"
    with pytest.raises(SourceUnavailable) as e:
        client.get_model_reference("lora")
    assert e.value.what == "v2/lora" and "HTTP 404" in e.value.reasons[0]


def test_async_twins(replica: Make, sim: CdnSimulator, tmp_path: Path) -> None:
    client = replica()

    async def main() -> tuple:
        image, text, legacy = await asyncio.gather(client.get_model_reference_async("image_generation"),
                                                   client.get_model_reference_async("text_generation"),
                                                   client.get_legacy_async("clip"))
        rec = await client.get_model_async("image_generation", "stable_diffusion")
        missing = await client.get_model_or_none_async("image_generation", "nope")
        everything = await client.get_all_model_references_async()
        await client.refresh_async(["clip"])
        again = await client.get_model_reference_async("image_generation")  # fresh: no thread, no request
        return image, text, legacy, rec, missing, everything, again

    sim.clear()
    image, text, legacy, rec, missing, everything, again = asyncio.run(main())
    assert thaw(image) == sim.document("image_generation")
    assert thaw(text) == sim.document("text_generation")
    assert legacy == sim.hosts[CDN][v1_key("clip")]
    assert rec["name"] == "stable_diffusion" and missing is None and again is image
    assert set(everything) == set(NAMES)
    assert sim.log()[-1] == ("cdn", MANIFEST_FILE, 304)  # refresh_async: one conditional request

    sim.fail(f"{CDN}/{MANIFEST_FILE}", 503)
    dead = replica(home=tmp_path / "empty")
    assert asyncio.run(dead.get_model_reference_or_none_async("image_generation")) is None
    assert asyncio.run(dead.get_legacy_or_none_async("image_generation")) is None
    with pytest.raises(SourceUnavailable):
        asyncio.run(dead.get_model_reference_async("image_generation"))


def test_offline_from_the_environment(replica: Make, sim: CdnSimulator, tmp_path: Path) -> None:
    online = replica()
    online.get_model_reference("image_generation")
    # a worker subprocess: offline through the environment, the same cache folder, no CDN it could reach
    env = {"HORDE_MODEL_REFERENCE_OFFLINE": "true", "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": dead_url(),
           "AIWORKER_CACHE_HOME": str(online.config.base_path.parent)}
    sim.clear()
    offline = ReplicaClient(env=env)  # its own (real) fetcher: it must never be used
    assert thaw(offline.get_model_reference("image_generation")) == sim.document("image_generation")
    with pytest.raises(SourceUnavailable, match="offline: reading the cache only"):
        offline.get_model_reference("text_generation")  # never fetched by the parent
    assert offline.source_info()["this_process"] == {"requests": 0, "body_bytes": 0}
    assert offline.source_info()["offline"] is True and sim.log() == []


def test_a_stuck_refresh_elsewhere_does_not_block_readers(replica: Make, sim: CdnSimulator) -> None:
    from builder.replica.cache import DiskCache

    good = thaw(replica().get_model_reference("image_generation"))
    client = replica(cache_ttl_seconds=0, lock_timeout=0.3)
    sim.clear()
    with DiskCache(client.config.cache_dir, 5).lock():  # another process, stuck mid-refresh
        t = time.monotonic()
        records = client.get_model_reference("image_generation")
        assert time.monotonic() - t < 2
    assert thaw(records) == good
    assert sim.log() == []


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
    assert r.returncode == 0 and r.stdout.encode() == (site_dir / v1_file("image_generation")).read_bytes()
    r = hmr_in_process("get", "clip", "--legacy", "--model", "ViT-L/14", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "ViT-L/14"
    r = hmr_in_process("source-info", env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["categories"]["image_generation"]["source"] == "cdn"
    assert info["generation"] == json.loads((site_dir / MANIFEST_FILE).read_bytes())["generation"]
    assert info["legacy"]["image_generation"]["models"] == 161

    # the CDN goes away: the cache answers, and stderr says so in one line
    dead_env = cli_env(nginx, tmp_path, HORDE_MODEL_REFERENCE_PRIMARY_API_URL=dead_url(),
                       HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS="0")
    r = hmr_in_process("get", "image_generation", "--model", "stable_diffusion", env=dead_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "stable_diffusion"
    assert r.stderr.startswith("note: served from cache") and "connection failed" in r.stderr

    # errors: one line, exit 1
    for args, message in (
            (["get", "no_such_category"], "unknown category 'no_such_category' (known: blip, clip, "),
            (["get", "image_generation", "--model", "nope"], "image_generation: no model 'nope'"),
            (["get", "clip", "--legacy", "--model", "nope"], "clip (legacy): no model 'nope'"),
            (["get", "video_generation", "--legacy"], "video_generation has no legacy (v1) format")):
        r = hmr_in_process(*args, env=env)
        assert r.returncode == 1 and r.stdout == "", args
        assert r.stderr.startswith(f"error: {message}") and len(r.stderr.splitlines()) == 1, (args, r.stderr)
    r = hmr_in_process("get", "image_generation", env=cli_env(nginx, tmp_path / "empty",
                                                        HORDE_MODEL_REFERENCE_PRIMARY_API_URL=dead_url()))
    assert r.returncode == 1 and "no source available" in r.stderr and "Traceback" not in r.stderr


def test_cli_debug_shows_the_traceback(tmp_path: Path) -> None:
    """The root group prints the client's errors: one line, or with --debug (before or after the command
    name) the traceback."""
    env = {"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": dead_url(), "AIWORKER_CACHE_HOME": str(tmp_path),
           "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false"}
    plain = run_hmr("get", "image_generation", env=env)
    assert plain.returncode == 1 and plain.stdout == ""
    assert plain.stderr.startswith("error: v2/image_generation: no source available (cdn http://127.0.0.1:")
    assert len(plain.stderr.splitlines()) == 1 and "connection failed" in plain.stderr
    for args in (("get", "image_generation", "--debug"), ("--debug", "get", "image_generation")):
        r = run_hmr(*args, env=env)
        assert r.returncode == 1 and r.stdout == "", args
        assert r.stderr.startswith("Traceback (most recent call last):"), (args, r.stderr[:300])
        assert "builder.errors.SourceUnavailable: v2/image_generation: no source available" in r.stderr
    r = run_hmr("get", "no_such_category", "--debug", env=env)
    assert r.returncode == 1 and "Traceback" in r.stderr
    assert "builder.replica.errors.CategoryError: unknown category 'no_such_category'" in r.stderr
