"""S3-compatible object storage through boto3 (AWS S3, Cloudflare R2, MinIO, Backblaze B2, rclone serve s3).

Credentials come from the standard AWS chain (environment, shared config/credentials files and
profiles, SSO, container and instance roles) and are never printed: error messages name the bucket,
the operation and the S3 error code, never a key id or secret.

Compatibility choices:
- botocore's own retries are off; `RetryPolicy` retries throttling, 5xx and dropped connections with
  jittered exponential backoff, so the behaviour and the count are ours (the summary reports it).
- Request checksums only "when required": the CRC trailers newer botocore adds by default are
  rejected by several S3-compatible stores. Response checksums likewise (a 304 otherwise breaks).
- Path-style addressing whenever a custom endpoint is used (MinIO, rclone and B2 need it; R2 takes it).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from builder.errors import ConfigError, HmrError, PublishError
from builder.publish.store import Head, Listed, RetryPolicy, Target

T = TypeVar("T")
#: a bucket's CORS rules, as boto3 takes and gives them (S3Target.list shadows the builtin in the class)
_Rules = list[dict[str, Any]]

__all__ = ["S3Target"]

THROTTLING = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
              "RequestThrottled", "ProvisionedThroughputExceededException", "ServiceUnavailable",
              "InternalError", "RequestTimeout", "RequestTimeTooSkewed"}
AUTH_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken",
               "TokenRefreshRequired", "InvalidSecurity", "AuthorizationHeaderMalformed", "AllAccessDisabled",
               "Unauthorized", "InvalidClientTokenId", "AccountProblem"}
NEST_PROBE = ".hmr-nest-probe"


def _without_userinfo(url: str) -> str:
    p = urlsplit(url)
    if p.username is None and p.password is None:
        return url
    host = (p.hostname or "") + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, host, p.path, p.query, p.fragment))


def _status(e: Any) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(e: Any) -> str:
    return str(e.response.get("Error", {}).get("Code") or "")


_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def _session() -> Any:
    """A fresh boto3 session (credentials are resolved anew, so a changed environment is seen) that
    shares botocore's data loader with the earlier ones of this process: parsing the S3 service model
    costs about 0.3 s, once per process instead of once per deploy."""
    import boto3
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _LOADER)
        session = boto3.session.Session(botocore_session=core)
        paths = _LOADER.search_paths  # boto3 appends its own data folder on every session: keep it once
        paths[:] = list(dict.fromkeys(paths))
    return session


class S3Target(Target):
    """The prefix `prefix` of `bucket` on S3 or an S3-compatible store (`endpoint_url`), through boto3."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, retry: RetryPolicy, workers: int = 8):
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.retry = retry
        self._lock = threading.Lock()
        session = _session()
        custom = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # no botocore retries: ours count
            max_pool_connections=max(10, workers),
            connect_timeout=10,
            read_timeout=60,
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"} if custom else {},
        )
        # the signature needs a region; S3-compatible stores accept us-east-1 (R2 also "auto")
        self.client = session.client("s3", endpoint_url=endpoint_url, region_name=session.region_name or "us-east-1",
                                     config=config)
        self.endpoint = _without_userinfo(self.client.meta.endpoint_url)

    # -- error handling ---------------------------------------------------------------------------

    def _retriable(self, e: BaseException) -> bool:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

        if isinstance(e, ClientError):
            status, code = _status(e), _code(e)
            if code in AUTH_ERRORS or code == "NoSuchBucket":
                return False
            return status >= 500 or status == 429 or code in THROTTLING
        return isinstance(e, ConnectionError | HTTPClientError)

    def _error(self, e: BaseException, op: str, key: str | None = None) -> HmrError:
        """The one-line error for a boto3 failure: never a credential, always the bucket or the key."""
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"{self.url}{key}" if key is not None else self.url
        if isinstance(e, NoCredentialsError | PartialCredentialsError):
            return ConfigError("no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                               "AWS_PROFILE, or another source of the AWS credential chain")
        if isinstance(e, ClientError):
            code, status = _code(e), _status(e)
            if code in AUTH_ERRORS or (status == 403 and not code):
                return PublishError(f"{self.url}: access denied ({code or 'HTTP 403'}) at {self.endpoint}: "
                                    "check the credentials and the bucket's permissions")
            if code == "NoSuchBucket":
                return PublishError(f"{self.url}: bucket {self.bucket!r} does not exist at {self.endpoint}")
            return PublishError(f"{where}: {op} failed: {code or 'error'} (HTTP {status})", key=key)
        if isinstance(e, ConnectionError | HTTPClientError):
            return PublishError(f"{where}: {op} failed: cannot reach {self.endpoint} ({type(e).__name__})", key=key)
        return PublishError(f"{where}: {op} failed: {type(e).__name__}", key=key)

    def _call(self, op: str, fn: Callable[[], T], key: str | None = None) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.retry.run(fn, self._retriable)
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, op, key) from None

    # -- Target -----------------------------------------------------------------------------------

    def open(self) -> None:
        """One cheap listing request: it fails on a missing bucket and on bad credentials alike."""
        # one cheap request that fails on a missing bucket and on bad credentials alike
        self._call("list", lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1))

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every page of a list_objects_v2 listing (it returns at most 1,000 keys per call)."""
        token: str | None = None
        while True:
            args = {"Bucket": self.bucket, **kwargs, **({"ContinuationToken": token} if token else {})}
            page: dict[str, Any] = self._call("list", partial(self.client.list_objects_v2, **args))
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def _add_objects(self, page: dict, out: dict[str, Listed]) -> None:
        for o in page.get("Contents", []):
            key = o["Key"][len(self.prefix):]
            if key and not key.endswith("/"):
                out[key] = Listed(int(o["Size"]), str(o.get("ETag") or "").strip('"') or None)

    def _list_all(self, prefix: str, out: dict[str, Listed]) -> None:
        """Add every object under `prefix` to `out`."""
        for page in self._pages(Prefix=prefix):
            self._add_objects(page, out)

    def list(self, under: str = "", exclude: str | None = None) -> dict[str, Listed]:
        """The listing's size and ETag of every object (paginated; the excluded folder is not listed)."""
        out: dict[str, Listed] = {}
        base = self.prefix + under
        if exclude is None:
            self._list_all(base, out)
            return out
        # one level with a delimiter, then every folder but the excluded one
        folders: list[str] = []
        for page in self._pages(Prefix=base, Delimiter="/"):
            self._add_objects(page, out)
            folders += [cp["Prefix"] for cp in page.get("CommonPrefixes", [])]
        for folder in folders:
            if folder != base + exclude:
                self._list_all(folder, out)
        return out

    def get(self, key: str) -> bytes | None:
        """GET the object; None on 404."""
        from botocore.exceptions import ClientError

        def fetch() -> bytes | None:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
            except ClientError as e:
                if _code(e) in ("NoSuchKey", "404") or _status(e) == 404 and _code(e) != "NoSuchBucket":
                    return None
                raise

        return self._call("get", fetch, key)

    def head(self, key: str) -> Head | None:
        """HEAD the object: its headers and the sha256 kept in its metadata; None on 404."""
        from botocore.exceptions import ClientError

        def fetch() -> Head | None:
            try:
                h = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as e:
                if _status(e) == 404:
                    return None
                raise
            # some stores return metadata keys Title-Cased (rclone: "Sha256")
            meta = {str(k).lower(): v for k, v in (h.get("Metadata") or {}).items()}
            return Head(int(h.get("ContentLength") or 0), h.get("ContentType"), h.get("CacheControl"),
                        meta.get("sha256"))

        return self._call("head", fetch, key)

    def put(self, key: str, data: bytes, content_type: str, cache_control: str, sha256: str,
            md5: str | None = None) -> None:
        """PUT the object with its headers, its sha256 as metadata and, given `md5`, a Content-MD5."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key, "Body": data,
                                  "ContentType": content_type, "CacheControl": cache_control,
                                  "Metadata": {"sha256": sha256}}
        if md5:
            # the store checks the body against it: a corrupted transfer is an error, not an object
            kwargs["ContentMD5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        self._call("upload", lambda: self.client.put_object(**kwargs), key)

    def delete(self, keys: Iterable[str]) -> None:
        """DeleteObjects, 1,000 keys a request; any key the store refuses to delete is an error."""
        batch = list(keys)
        for i in range(0, len(batch), 1000):  # the DeleteObjects limit
            chunk = [{"Key": self.prefix + k} for k in batch[i:i + 1000]]
            r: dict[str, Any] = self._call("delete", partial(self.client.delete_objects, Bucket=self.bucket,
                                                              Delete={"Objects": chunk, "Quiet": True}))
            errors = r.get("Errors") or []
            if errors:
                first = errors[0]
                key = str(first.get("Key", ""))[len(self.prefix):]
                raise PublishError(f"{self.url}{key}: delete failed: "
                                   f"{first.get('Code', 'error')} ({len(errors)} of {len(chunk)} failed)", key=key)

    def probe_nesting(self, under: str | None) -> bool:
        """Put an empty object under a key that is an object itself (`under`, or a probe object made
        for it), and delete what the probe wrote."""
        from botocore.exceptions import BotoCoreError, ClientError

        def throttled(e: BaseException) -> bool:
            # retry what says "later" (429, 503, SlowDown) or a dropped connection, but not the error
            # a filesystem-backed store answers to a nested key (rclone: 500 InternalError, MinIO: 4xx)
            if isinstance(e, ClientError):
                return _status(e) in (429, 503) or _code(e) in THROTTLING - {"InternalError"}
            return self._retriable(e)

        def try_put(key: str) -> bool:
            try:
                self.retry.run(lambda: self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=b""),
                               throttled)
                return True
            except ClientError as e:
                if _code(e) in AUTH_ERRORS or _code(e) == "NoSuchBucket" or throttled(e):
                    raise self._error(e, "upload", key) from None
                return False
            except BotoCoreError as e:
                raise self._error(e, "upload", key) from None

        if under is not None:
            probe = f"{under}/{NEST_PROBE}"
            ok = try_put(probe)
            if ok:
                self.delete([probe])
            return ok
        self.put(NEST_PROBE, b"", "application/octet-stream", "no-store", "")
        ok = try_put(f"{NEST_PROBE}/x")
        self.delete([f"{NEST_PROBE}/x", NEST_PROBE] if ok else [NEST_PROBE])
        return ok

    def cors_rules(self) -> _Rules:
        """The bucket CORS rule of the route table's CORS headers (S3 answers the preflight itself, so
        OPTIONS is no allowed method here)."""
        from builder.routes import CORS_ALLOW_HEADERS, CORS_HEADERS, CORS_MAX_AGE

        return [{"AllowedOrigins": [CORS_HEADERS["Access-Control-Allow-Origin"]], "AllowedMethods": ["GET", "HEAD"],
                 "AllowedHeaders": [h.strip() for h in CORS_ALLOW_HEADERS.split(",")],
                 "ExposeHeaders": [h.strip() for h in CORS_HEADERS["Access-Control-Expose-Headers"].split(",")],
                 "MaxAgeSeconds": int(CORS_MAX_AGE)}]

    def ensure_cors(self, dry_run: bool = False) -> str:
        """Give the bucket the CORS rule of `cors_rules` unless it has it: "unchanged", "set" (in a dry
        run "would set"), "unsupported (CODE)" when the store has no bucket CORS, "not set (CODE)" when
        it refused (no permission for bucket settings; rclone answers BucketAlreadyExists).

        Raises:
            PublishError: the bucket does not exist, or the store cannot be reached.
        """
        from botocore.exceptions import ClientError

        want = self.cors_rules()
        unsupported = {"NotImplemented", "MethodNotAllowed", "NotSupported", "XNotImplemented"}

        def current() -> _Rules:
            try:
                rules = self.client.get_bucket_cors(Bucket=self.bucket).get("CORSRules") or []
            except ClientError as e:
                if _code(e) == "NoSuchCORSConfiguration":
                    return []
                raise
            return [{k: v for k, v in r.items() if k != "ID"} for r in rules]

        def same(have: _Rules) -> bool:
            norm = [{k: sorted(v) if isinstance(v, list) else v for k, v in r.items()} for r in have]
            return norm == [{k: sorted(v) if isinstance(v, list) else v for k, v in r.items()} for r in want]

        try:
            have = self.retry.run(current, self._retriable)
            if same(have):
                return "unchanged"
            if dry_run:
                return "would set"
            self.retry.run(lambda: self.client.put_bucket_cors(Bucket=self.bucket,
                                                               CORSConfiguration={"CORSRules": want}), self._retriable)
            return "set"
        except ClientError as e:
            if _code(e) == "NoSuchBucket":
                raise self._error(e, "bucket CORS") from None
            if _code(e) in unsupported or _status(e) in (405, 501):
                return f"unsupported ({_code(e) or _status(e)})"
            # a token that may write objects but not bucket settings (common on R2), or a store that
            # answers the CORS call with something else (rclone: BucketAlreadyExists): the objects
            # still deploy, the warning says what to do
            return f"not set ({_code(e) or 'HTTP ' + str(_status(e))})"

    def close(self) -> None:
        """Close boto3's connection pool."""
        self.client.close()
