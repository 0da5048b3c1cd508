"""Pull requests on a legacy repository through PyGithub (github.com or GitHub Enterprise).

Authentication, as the upstream sync tool: a GitHub App installation (GITHUB_APP_ID,
GITHUB_APP_INSTALLATION_ID, and GITHUB_APP_PRIVATE_KEY with "\\n" escapes or GITHUB_APP_PRIVATE_KEY_PATH)
takes precedence; otherwise a token from HORDE_GITHUB_SYNC_GITHUB_TOKEN, GITHUB_TOKEN or GH_TOKEN.
The token is never printed. HMR_GITHUB_WRITE_INTERVAL (seconds, default 1) spaces API writes as
GitHub's secondary-rate-limit guidance asks; a local test server can use 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from builder.errors import ConfigError, FetchError

__all__ = ["GitHubAuth", "PullRequests", "PullResult", "auth_from_env", "slug_from_url", "web_host"]

DEFAULT_API = "https://api.github.com"
TOKEN_VARS = ("HORDE_GITHUB_SYNC_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN")
_SLUG = re.compile(r"^/?(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


def web_host(api_url: str | None) -> str:
    """The git host that goes with an API URL: github.com, or the GitHub Enterprise host."""
    host = (urlsplit(api_url or DEFAULT_API).hostname or "").lower()
    return "github.com" if host in ("api.github.com", "github.com") else host


def slug_from_url(url: str, api_url: str | None) -> str | None:
    """"owner/name" of a GitHub remote URL (https or scp-like ssh), or None for any other remote."""
    host = web_host(api_url)
    m = re.match(r"^[\w.-]+@(?P<host>[^:/]+):(?P<path>.+)$", url)  # git@github.com:owner/name.git
    if m:
        h, path = m["host"], m["path"]
    else:
        p = urlsplit(url)
        if p.scheme not in ("https", "http", "ssh", "git"):
            return None
        h, path = p.hostname or "", p.path
    if h.lower() != host:
        return None
    s = _SLUG.match(path)
    return f"{s['owner']}/{s['name']}" if s else None


@dataclass
class GitHubAuth:
    """Credentials for PyGithub, and which kind they are."""

    auth: Any  # a PyGithub Auth object
    kind: str  # "app" or "token"


def auth_from_env(env: Mapping[str, str] | None = None) -> GitHubAuth | None:
    """The GitHub credentials `env` (default: the environment) holds: an App installation first,
    else a token; None when there are none.

    Raises:
        ConfigError: the App variables are incomplete or malformed.
    """
    from github import Auth

    env = os.environ if env is None else env
    app_id, inst = env.get("GITHUB_APP_ID"), env.get("GITHUB_APP_INSTALLATION_ID")
    key, key_path = env.get("GITHUB_APP_PRIVATE_KEY"), env.get("GITHUB_APP_PRIVATE_KEY_PATH")
    if app_id and (key or key_path):
        if key and key_path:
            raise ConfigError("set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, not both")
        if not inst:
            raise ConfigError("GitHub App authentication needs GITHUB_APP_INSTALLATION_ID")
        if key_path:
            try:
                key = open(key_path, encoding="utf-8").read()
            except OSError as e:
                raise ConfigError(f"GITHUB_APP_PRIVATE_KEY_PATH: {e.strerror or e}") from None
        try:
            app = Auth.AppAuth(int(app_id), (key or "").replace("\\n", "\n"))
            return GitHubAuth(app.get_installation_auth(int(inst)), "app")
        except ValueError:
            raise ConfigError("GITHUB_APP_ID and GITHUB_APP_INSTALLATION_ID must be numbers") from None
    for var in TOKEN_VARS:
        if env.get(var):
            return GitHubAuth(Auth.Token(env[var]), "token")
    return None


@dataclass
class PullResult:
    """The sync pull request (opened now, or kept) and the superseded ones closed."""

    number: int
    url: str
    created: bool
    closed: list[int] = field(default_factory=list)


def _explain(e: Exception, what: str, api_url: str) -> FetchError:
    """A failed GitHub API call as one line: the HTTP status and GitHub's message, never a token."""
    from github import GithubException

    if isinstance(e, GithubException):
        msg = e.data.get("message") if isinstance(e.data, dict) else None
        return FetchError(f"GitHub API: {what} failed: HTTP {e.status}{f' ({msg})' if msg else ''}",
                          url=api_url, status=e.status)
    return FetchError(f"GitHub API: {what} failed: {type(e).__name__}", url=api_url)


class PullRequests:
    """Open the sync pull request of a branch; close the open `sync/` pull requests it supersedes."""

    def __init__(self, auth: GitHubAuth, api_url: str | None = None):
        from github import Github

        try:
            interval = float(os.environ.get("HMR_GITHUB_WRITE_INTERVAL", "1"))
        except ValueError:
            raise ConfigError("HMR_GITHUB_WRITE_INTERVAL must be a number of seconds") from None
        self.api_url = (api_url or DEFAULT_API).rstrip("/")
        self.gh = Github(base_url=self.api_url, auth=auth.auth,
                         seconds_between_requests=min(interval, 0.25), seconds_between_writes=interval)

    def token(self) -> str:
        """The token git pushes with (an App's installation token is fetched here)."""
        try:
            return str(self.gh.requester.auth.token)  # type: ignore[union-attr]
        except Exception as e:  # PyGithub raises several types while fetching an installation token
            raise _explain(e, "getting an installation token", self.api_url) from None

    def open_or_reuse(self, slug: str, base: str, branch: str, title: str, body: str) -> PullResult:
        """The pull request of `branch` into `base` on `slug` (opened if none is open), after closing
        every other open pull request from a `sync/` branch of the same repository."""
        try:
            repo = self.gh.get_repo(slug)
            open_pulls = list(repo.get_pulls(state="open", base=base))
        except Exception as e:
            raise _explain(e, f"listing the pull requests of {slug}", self.api_url) from None
        mine = [p for p in open_pulls if p.head.ref == branch]
        if mine:
            pr, created = mine[0], False
        else:
            try:
                pr, created = repo.create_pull(base=base, head=branch, title=title, body=body), True
            except Exception as e:
                raise _explain(e, f"opening a pull request from {branch}", self.api_url) from None
        result = PullResult(pr.number, pr.html_url or "", created)
        for p in open_pulls:
            head_repo = p.head.repo.full_name if p.head.repo is not None else slug
            # only our own sync branches (a fork's "sync/..." branch is someone else's work)
            if p.number == pr.number or not p.head.ref.startswith("sync/") or head_repo.lower() != slug.lower():
                continue
            try:
                p.create_issue_comment(f"Superseded by #{pr.number} ({result.url}), which holds the current "
                                       "build of the model reference. Closed by `hmr sync-legacy`.")
                p.edit(state="closed")
            except Exception as e:
                raise _explain(e, f"closing the superseded pull request #{p.number}", self.api_url) from None
            result.closed.append(p.number)
        return result
