"""Project settings: `[tool.hmr]` in the nearest pyproject.toml, overridable by environment variables."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from builder.errors import ConfigError

CANONICAL_FORMATS = ("v2", "legacy")
CANONICAL_ENV = "HORDE_MODEL_REFERENCE_CANONICAL_FORMAT"


def project_settings(start: Path | None = None) -> dict[str, Any]:
    """`[tool.hmr]` of the nearest pyproject.toml at or above `start` (default: the working directory).

    Raises:
        ConfigError: that pyproject.toml cannot be read or parsed.
    """
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        p = d / "pyproject.toml"
        if p.is_file():
            try:
                return tomllib.loads(p.read_text(encoding="utf-8")).get("tool", {}).get("hmr", {})
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"{p}: unreadable ({e})") from None
    return {}


def canonical_format(start: Path | None = None) -> str:
    """Which format `data/` holds: `v2` (records, the default) or `legacy` (the legacy files themselves).

    Like the existing library, the value is case-insensitive and the environment variable wins.

    Raises:
        ConfigError: the value is neither.
    """
    value = os.environ.get(CANONICAL_ENV) or project_settings(start).get("canonical_format") or "v2"
    value = str(value).lower()
    if value not in CANONICAL_FORMATS:
        raise ConfigError(f"canonical_format {value!r} is not one of {', '.join(CANONICAL_FORMATS)} "
                       f"(set in [tool.hmr] of pyproject.toml or {CANONICAL_ENV})")
    return value
