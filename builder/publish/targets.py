"""`open_target(url)`: the store a deploy URL names, `s3://BUCKET/PREFIX` or `file:///PATH`.

Kept apart from the store interface (`builder.publish.store`), which the stores implement: this
module imports them, they never import it, and boto3 is imported only for an `s3://` URL.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from builder.errors import ConfigError
from builder.publish.store import RetryPolicy, Target

__all__ = ["open_target"]

_EXPECTED = "expected s3://BUCKET/PREFIX or file:///PATH"


def open_target(url: str, endpoint_url: str | None = None, retry: RetryPolicy | None = None,
                workers: int = 8) -> Target:
    """The target named by `url`: `s3://BUCKET[/PREFIX]` or `file:///PATH` (not yet contacted).

    Raises:
        ConfigError: the URL names no usable target, or `endpoint_url` is given for a directory.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"{url}: no bucket (expected s3://BUCKET/PREFIX)")
        from builder.publish.s3 import S3Target

        return S3Target(parts.netloc, parts.path.strip("/"), endpoint_url, retry or RetryPolicy(), workers)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{url}: only local paths (file:///PATH)")
        if endpoint_url:
            raise ConfigError("--endpoint-url applies to s3:// targets only")
        from builder.publish.localdir import DirTarget

        return DirTarget(unquote(parts.path))
    raise ConfigError(f"{url}: unsupported target ({_EXPECTED})")
