"""A thin runner for the git command line (the legacy sync's working copy).

Credentials never reach argv, `.git/config` or messages: a token travels as an HTTP header in
`GIT_CONFIG_*` environment variables scoped to one host, messages redact user:password@ in URLs,
and git never prompts (GIT_TERMINAL_PROMPT=0), so a missing credential fails instead of hanging.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from builder.errors import PublishError

__all__ = ["Git", "auth_env", "redact"]

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` without URL credentials and without any of `secrets`."""
    out = _USERINFO.sub("***@", text)
    for s in secrets:
        if s:
            out = out.replace(s, "***")
    return out


def auth_env(url: str, token: str | None, hosts: Sequence[str]) -> dict[str, str]:
    """Environment that makes git send `token` to `url`'s host (only if it is one of `hosts`, https)."""
    p = urlsplit(url)
    if not token or p.scheme != "https" or not p.hostname or p.hostname.lower() not in {h.lower() for h in hosts}:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.https://{p.netloc}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


class Git:
    """git commands in `cwd` with `env` added, never prompting; `secrets` are redacted from messages."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None, secrets: Sequence[str] = ()):
        self.cwd = cwd
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
        self.secrets = [s for s in secrets if s]

    def run(self, *args: str, check: bool = True, cwd: Path | None = None, input: bytes | None = None) -> str:
        """`git ARGS`' standard output as text (see `run_bytes`)."""
        return self.run_bytes(*args, check=check, cwd=cwd, input=input).decode(errors="replace")

    def run_bytes(self, *args: str, check: bool = True, cwd: Path | None = None, input: bytes | None = None) -> bytes:
        """`git ARGS`' standard output; with `check`, a non-zero exit is an error.

        Raises:
            PublishError: git is missing, timed out, or failed (its last `fatal:`/`error:` line, redacted).
        """
        try:
            r = subprocess.run(["git", *args], cwd=cwd or self.cwd, env=self.env, capture_output=True,
                               input=input, timeout=600)
        except FileNotFoundError:
            raise PublishError("git is not installed") from None
        except subprocess.TimeoutExpired:
            raise PublishError(f"git {args[0]} timed out") from None
        if check and r.returncode != 0:
            err = r.stderr.decode(errors="replace").strip().splitlines()
            detail = next((ln for ln in reversed(err) if ln.startswith(("fatal:", "error:"))), err[-1] if err else "")
            raise PublishError(redact(f"git {args[0]} failed: {detail or f'exit {r.returncode}'}", self.secrets))
        return r.stdout

    def ok(self, *args: str) -> bool:
        """Whether `git ARGS` exits 0 (its output is discarded)."""
        return subprocess.run(["git", *args], cwd=self.cwd, env=self.env, capture_output=True,
                              timeout=600).returncode == 0
