"""Every numeric setting is range-checked when it is read: one line naming the variable, exit 1, and
nothing written to the shared cache (a TTL of 1e300 used to overflow and poison it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.replica.config import ReplicaConfig
from builder.replica.errors import ConfigError
from tests.helpers import run_hmr

TTL, TIMEOUT = "HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS", "HORDE_MODEL_REFERENCE_PRIMARY_API_TIMEOUT"


@pytest.mark.parametrize("var", [TTL, TIMEOUT])
@pytest.mark.parametrize("value", ["1e300", "inf", "-inf", "nan", "-1", "ten", "1e5000"])
def test_an_out_of_range_setting_is_refused_naming_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        ReplicaConfig.from_env({var: value})
    assert str(e.value).startswith(f"{var}: {value!r} ")


def test_the_bounds_themselves_are_accepted() -> None:
    cfg = ReplicaConfig.from_env({TTL: "31536000", TIMEOUT: "3600"})
    assert (cfg.cache_ttl_seconds, cfg.timeout) == (31536000.0, 3600.0)
    assert ReplicaConfig.from_env({TTL: "0"}).cache_ttl_seconds == 0.0
    with pytest.raises(ConfigError):
        ReplicaConfig.from_env({}, lock_timeout=1e300)


def test_hmr_get_says_it_in_one_line_and_touches_no_cache(tmp_path: Path) -> None:
    home = tmp_path / "cache"
    # the URL is never contacted: the setting is refused first
    r = run_hmr("get", "image_generation", env={TTL: "1e300", "AIWORKER_CACHE_HOME": str(home),
                                                "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": "http://127.0.0.1:9/api",
                                                "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false"})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {TTL}: '1e300' must be a number from 0 to 3.1536e+07"]
    assert not home.exists()
