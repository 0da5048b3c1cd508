"""`hmr deploy` gives an S3 bucket the CORS rule of the route table (moto's S3 server on 127.0.0.1, a store
with bucket CORS), leaves it alone when it is already there, and on a store without bucket CORS
(`rclone serve s3`) deploys anyway with a one-line warning."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.routes import CORS_ALLOW_HEADERS
from tests.publish.test_publish_deploy import hmr_deploy
from tests.publish_support import Rclone, aws_env
from tests.site_support import free_port, wait_for_port


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            cwd=tmp_path_factory.mktemp("moto"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def _client(url: str):  # noqa: ANN202 - a boto3 client
    import boto3

    env = aws_env()
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")


def _rules(client, bucket: str) -> list[dict] | None:  # noqa: ANN001
    from botocore.exceptions import ClientError

    try:
        return client.get_bucket_cors(Bucket=bucket)["CORSRules"]
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchCORSConfiguration"
        return None


def test_deploy_sets_the_bucket_cors_once(mini_site: Path, moto_url: str) -> None:
    client = _client(moto_url)
    client.create_bucket(Bucket="hmr-cors")
    dry = hmr_deploy(mini_site, "s3://hmr-cors/site", "--dry-run", endpoint=moto_url)
    assert dry.returncode == 0, dry.stderr
    assert _rules(client, "hmr-cors") is None  # a dry run changes nothing

    r = hmr_deploy(mini_site, "s3://hmr-cors/site", endpoint=moto_url)
    assert r.returncode == 0, r.stderr
    assert "bucket CORS set" in r.stdout and "warning" not in r.stderr
    rules = _rules(client, "hmr-cors")
    assert rules is not None and len(rules) == 1
    rule = rules[0]
    assert rule["AllowedOrigins"] == ["*"] and sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]
    assert rule["ExposeHeaders"] == ["ETag"] and rule["MaxAgeSeconds"] == 86400
    assert {h.lower() for h in rule["AllowedHeaders"]} == {h.strip().lower() for h in CORS_ALLOW_HEADERS.split(",")}

    again = hmr_deploy(mini_site, "s3://hmr-cors/site", endpoint=moto_url)
    assert again.returncode == 0 and "bucket CORS unchanged" in again.stdout, again.stdout

    # a rule someone changed by hand is put back
    client.put_bucket_cors(Bucket="hmr-cors", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://example.org"], "AllowedMethods": ["GET"]}]})
    fixed = hmr_deploy(mini_site, "s3://hmr-cors/site", endpoint=moto_url)
    assert fixed.returncode == 0 and "bucket CORS set" in fixed.stdout
    assert _rules(client, "hmr-cors") == rules


def test_a_store_without_bucket_cors_deploys_with_a_warning(mini_site: Path, rclone: Rclone) -> None:
    rclone.bucket("refsite")
    r = hmr_deploy(mini_site, "s3://refsite/nocors", endpoint=rclone.url)
    assert r.returncode == 0, r.stderr
    assert "bucket CORS not set (BucketAlreadyExists)" in r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if "CORS" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and "CDN or web server" in warnings[0]
