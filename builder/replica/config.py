"""Configuration of the replica client: constructor arguments first, then the environment.

The environment variables are the existing library's (`horde-model-reference`, see
`reference/api.md` §4), with the same names and meanings, plus ours for mirrors, the GitHub raw
base and trusted signing keys. Names are matched case-insensitively, as pydantic-settings does for
the existing library. Every value is checked here, so a typo fails at construction, naming the
variable, instead of surfacing as a confusing network error later.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.categories import DEFAULT_BRANCH, IMAGE_REPO, TEXT_REPO
from builder.replica.errors import ConfigError

PREFIX = "HORDE_MODEL_REFERENCE_"
DEFAULT_PRIMARY_API_URL = "https://models.aihorde.net/api"
DEFAULT_GITHUB_RAW_URL = "https://raw.githubusercontent.com"
DEFAULT_TTL = 60.0
DEFAULT_TIMEOUT = 10.0
#: the largest TTL (a year) and per-request timeout (an hour) accepted
MAX_TTL = 365 * 86400.0
MAX_TIMEOUT = 3600.0
#: folder under AIWORKER_CACHE_HOME, as the existing library names it; our files go in a sub-folder
BASE_FOLDER = "horde_model_reference"
CACHE_FOLDER = "replica"

#: every variable the client reads: name -> (default as documented, meaning); the README table is this
ENV_VARS: dict[str, tuple[str, str]] = {
    PREFIX + "PRIMARY_API_URL": (DEFAULT_PRIMARY_API_URL,
                                 "CDN base URL ending in `/api` (the site's `api/` folder); empty: no CDN"),
    PREFIX + "MIRROR_URLS": ("(none)", "further bases, tried in order after the CDN; comma-separated or a JSON list"),
    PREFIX + "CACHE_TTL_SECONDS": ("60", "seconds between two checks of the manifest"),
    PREFIX + "PRIMARY_API_TIMEOUT": ("10", "seconds per request (connect, each read, and the whole body)"),
    PREFIX + "ENABLE_GITHUB_FALLBACK": ("true", "fall back to the legacy GitHub files when no site source works"),
    PREFIX + "OFFLINE": ("false", "read only the cache on disk; never use the network"),
    PREFIX + "IMAGE_GITHUB_REPO__OWNER": ("Haidra-Org", "image legacy repository owner"),
    PREFIX + "IMAGE_GITHUB_REPO__NAME": ("AI-Horde-image-model-reference", "image legacy repository name"),
    PREFIX + "IMAGE_GITHUB_REPO__BRANCH": ("main", "image legacy repository branch"),
    PREFIX + "TEXT_GITHUB_REPO__OWNER": ("Haidra-Org", "text legacy repository owner"),
    PREFIX + "TEXT_GITHUB_REPO__NAME": ("AI-Horde-text-model-reference", "text legacy repository name"),
    PREFIX + "TEXT_GITHUB_REPO__BRANCH": ("main", "text legacy repository branch"),
    PREFIX + "GITHUB_RAW_URL": (DEFAULT_GITHUB_RAW_URL,
                                "prefix of the raw GitHub URLs `{prefix}/{owner}/{name}/refs/heads/{branch}/{file}`: "
                                "a mirror or a proxy (`https://proxy.example/https://raw.githubusercontent.com`)"),
    PREFIX + "TRUSTED_KEYS": ("(none)", "Ed25519 public keys (base64 of 32 bytes), comma-separated: when set, "
                                        "the manifest must carry a valid signature by one of them"),
    "AIWORKER_CACHE_HOME": ("the platform cache directory",
                            "cache root; files go under `<root>/horde_model_reference/replica/`"),
}

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


@dataclass(frozen=True)
class GithubRepo:
    """A legacy GitHub repository (owner, name, branch) and its raw-file URLs."""

    owner: str
    name: str
    branch: str = DEFAULT_BRANCH

    def raw_url(self, raw_base: str, file: str, commit: str | None = None) -> str:
        """The URL of `file` under the raw base (`https://raw.githubusercontent.com`, a mirror or a proxy):
        at the branch head, or at `commit` (raw GitHub serves `{owner}/{name}/{sha}/{file}`)."""
        ref = commit if commit else f"refs/heads/{self.branch}"
        return f"{raw_base.rstrip('/')}/{self.owner}/{self.name}/{ref}/{file}"


def _repo(full: str) -> GithubRepo:
    owner, name = full.split("/")
    return GithubRepo(owner, name)


@dataclass(frozen=True)
class ReplicaConfig:
    """Every setting of the client, checked; `from_env` fills it from the environment (see `ENV_VARS`)."""

    primary_api_url: str | None = DEFAULT_PRIMARY_API_URL
    mirror_urls: tuple[str, ...] = ()
    cache_ttl_seconds: float = DEFAULT_TTL
    timeout: float = DEFAULT_TIMEOUT
    #: per GitHub request; defaults to `timeout`
    github_timeout: float | None = None
    enable_github_fallback: bool = True
    offline: bool = False
    image_github_repo: GithubRepo = field(default_factory=lambda: _repo(IMAGE_REPO))
    text_github_repo: GithubRepo = field(default_factory=lambda: _repo(TEXT_REPO))
    github_raw_url: str = DEFAULT_GITHUB_RAW_URL
    #: base64 raw Ed25519 public keys; non-empty means "signature required"
    trusted_keys: tuple[str, ...] = ()
    #: `<AIWORKER_CACHE_HOME>/horde_model_reference`; the client's files are in its `replica/` folder
    base_path: Path = field(default_factory=lambda: default_cache_home() / BASE_FOLDER)
    #: a payload with fewer models than this share of the cached copy is refused (0 disables the check)
    shrink_ratio: float = 0.5
    #: seconds a failed source is skipped; defaults to max(TTL, 10 s): one timeout per refresh at most
    breaker_cooldown: float | None = None
    #: seconds to wait for another process's refresh before serving what the cache holds
    lock_timeout: float = 60.0
    #: a response larger than this is refused (a misconfigured proxy must not fill memory)
    max_bytes: int = 64 * 1024 * 1024

    @property
    def cache_dir(self) -> Path:
        """The client's own folder: `<base_path>/replica`."""
        return self.base_path / CACHE_FOLDER

    @property
    def cooldown(self) -> float:
        """Seconds a failed source is skipped: `breaker_cooldown`, or max(TTL, 10 s)."""
        if self.breaker_cooldown is not None:
            return self.breaker_cooldown
        return max(self.cache_ttl_seconds, 10.0)

    @property
    def github_request_timeout(self) -> float:
        """Seconds per GitHub request: `github_timeout`, or `timeout`."""
        return self.github_timeout if self.github_timeout is not None else self.timeout

    @property
    def site_urls(self) -> tuple[str, ...]:
        """The CDN base, then the mirrors: the sources that serve a whole built site."""
        return ((self.primary_api_url,) if self.primary_api_url else ()) + self.mirror_urls

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ReplicaConfig:
        """Environment (default `os.environ`) for every setting not given in `overrides`.

        `overrides` take the field names; `cache_home` is also accepted (the AIWORKER_CACHE_HOME
        equivalent). None means "not given".
        """
        getenv = _env_lookup(os.environ if env is None else env)
        unknown = set(overrides) - {f for f in cls.__dataclass_fields__} - {"cache_home"}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        values: dict[str, Any] = {}

        if "primary_api_url" in overrides:  # an explicit None or "" means "no CDN"
            values["primary_api_url"] = _url_or_none(overrides["primary_api_url"], "primary_api_url")
        else:
            raw = getenv(PREFIX + "PRIMARY_API_URL")
            values["primary_api_url"] = (DEFAULT_PRIMARY_API_URL if raw is None
                                         else _url_or_none(raw, PREFIX + "PRIMARY_API_URL"))
        if "mirror_urls" in given:
            mirrors, origin = given["mirror_urls"], "mirror_urls"
            mirrors = _url_list(mirrors, origin) if isinstance(mirrors, str) else tuple(mirrors)
        else:
            origin = PREFIX + "MIRROR_URLS"
            mirrors = _url_list(getenv(origin) or "", origin)
        for m in mirrors:
            _check_url(m, origin)
        values["mirror_urls"] = tuple(m.rstrip("/") for m in mirrors)

        values["cache_ttl_seconds"] = _number(given.get("cache_ttl_seconds", getenv(PREFIX + "CACHE_TTL_SECONDS")),
                                              PREFIX + "CACHE_TTL_SECONDS", DEFAULT_TTL, minimum=0.0,
                                              maximum=MAX_TTL)
        values["timeout"] = _number(given.get("timeout", getenv(PREFIX + "PRIMARY_API_TIMEOUT")),
                                    PREFIX + "PRIMARY_API_TIMEOUT", DEFAULT_TIMEOUT, minimum=0.001,
                                    maximum=MAX_TIMEOUT)
        values["enable_github_fallback"] = _bool(
            given.get("enable_github_fallback", getenv(PREFIX + "ENABLE_GITHUB_FALLBACK")),
            PREFIX + "ENABLE_GITHUB_FALLBACK", True)
        values["offline"] = _bool(given.get("offline", getenv(PREFIX + "OFFLINE")), PREFIX + "OFFLINE", False)
        for kind, default in (("image", IMAGE_REPO), ("text", TEXT_REPO)):
            fname = f"{kind}_github_repo"
            if fname in given:
                repo = given[fname]
                values[fname] = _repo(repo) if isinstance(repo, str) else repo
                continue
            d = _repo(default)
            var = f"{PREFIX}{kind.upper()}_GITHUB_REPO__"
            values[fname] = GithubRepo(getenv(var + "OWNER") or d.owner, getenv(var + "NAME") or d.name,
                                       getenv(var + "BRANCH") or d.branch)
        raw_url = given.get("github_raw_url", getenv(PREFIX + "GITHUB_RAW_URL")) or DEFAULT_GITHUB_RAW_URL
        _check_url(raw_url, PREFIX + "GITHUB_RAW_URL")
        values["github_raw_url"] = raw_url.rstrip("/")
        if "trusted_keys" in given:
            keys = given["trusted_keys"]
            keys = _split(keys) if isinstance(keys, str) else tuple(keys)
        else:
            keys = _split(getenv(PREFIX + "TRUSTED_KEYS") or "")
        values["trusted_keys"] = _check_keys(keys)

        if "base_path" in given:
            values["base_path"] = Path(given["base_path"])
        else:
            home = given.get("cache_home") or getenv("AIWORKER_CACHE_HOME")
            values["base_path"] = (Path(home) if home else default_cache_home()) / BASE_FOLDER
        for name in ("github_timeout", "breaker_cooldown", "lock_timeout", "shrink_ratio", "max_bytes"):
            if name in given:
                values[name] = given[name]
                if name != "shrink_ratio":
                    _number(given[name], name, 0.0, minimum=0.0, maximum=MAX_TTL if name != "max_bytes" else 2.0**40)
        cfg = cls(**values)
        if not 0 <= cfg.shrink_ratio <= 1:
            raise ConfigError(f"shrink_ratio must be between 0 and 1, not {cfg.shrink_ratio}")
        return cfg

    def with_(self, **changes: Any) -> ReplicaConfig:
        """A copy with `changes` (field names) applied."""
        return replace(self, **changes)

    def info(self) -> dict[str, Any]:
        """The `source_info()["config"]` entry: the sources and limits in force."""
        return {"cdn": self.primary_api_url, "mirrors": list(self.mirror_urls),
                "github": self.github_raw_url if self.enable_github_fallback else None,
                "ttl_seconds": self.cache_ttl_seconds, "timeout_seconds": self.timeout,
                "signature_required": bool(self.trusted_keys)}


def default_cache_home() -> Path:
    """The platform's user cache directory (AIWORKER_CACHE_HOME unset)."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _env_lookup(env: Mapping[str, str]):  # noqa: ANN202 - a small closure
    # pydantic-settings matches names case-insensitively: an exact match wins, then any casing
    folded = {k.upper(): v for k, v in env.items()}

    def get(name: str) -> str | None:
        v = env.get(name)
        return v if v is not None else folded.get(name.upper())

    return get


def _split(raw: str) -> tuple[str, ...]:
    raw = raw.strip()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except ValueError:
            raise ConfigError(f"not a JSON list: {raw!r}") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"not a JSON list of strings: {raw!r}")
        return tuple(i.strip() for i in items if i.strip())
    return tuple(p.strip() for p in raw.replace("\n", ",").replace(" ", ",").split(",") if p.strip())


def _url_list(raw: str, name: str) -> tuple[str, ...]:
    try:
        return _split(raw)
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None


def _check_url(url: str, name: str) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: {url!r} is not an http(s) URL")


def _url_or_none(raw: object, name: str) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if text.lower() in ("", "none", "null"):  # the existing library: empty or null means GitHub only
        return None
    _check_url(text, name)
    return text.rstrip("/")


def _number(raw: object, name: str, default: float, minimum: float, maximum: float) -> float:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    # a bound above: a TTL of 1e300 overflows the timestamps it is added to, and poisons the cache
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}: {raw!r} must be a number from {minimum:g} to {maximum:g}")
    return value


def _bool(raw: object, name: str, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: {raw!r} is not a boolean (true/false)")


def _check_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    if not keys:
        return keys
    from builder.signing import parse_public_key  # cryptography costs import time: only when keys are set

    for k in keys:
        try:
            parse_public_key(k)
        except ValueError as e:
            raise ConfigError(f"{PREFIX}TRUSTED_KEYS: {k[:16]}...: {e}") from None
    return keys
