"""S3 for the landing tests: moto's server on 127.0.0.1, and an environment that points boto3 (in the test and in
collector subprocesses) at it with fake credentials, so nothing can reach AWS whatever the machine's setup."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.aws.loopback import FAKE_CREDENTIALS


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, str]:
    """The environment of this test and of the collectors it starts: boto3's own settings, no AWS config files."""
    env = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(s3_env: dict[str, str]) -> str:
    """A new, empty bucket in moto (one per test: the server is shared by a module's tests)."""
    name = f"tb-{uuid.uuid4().hex[:12]}"
    client().create_bucket(Bucket=name)
    return name


def client() -> Any:
    return boto3.client("s3")


def keys(bucket: str, prefix: str = "") -> list[str]:
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def body(bucket: str, key: str) -> bytes:
    return bytes(client().get_object(Bucket=bucket, Key=key)["Body"].read())


def manifest(bucket: str, key: str) -> dict[str, Any]:
    data = json.loads(body(bucket, key))
    assert isinstance(data, dict)
    return data


def deny_writes(bucket: str) -> None:
    """A bucket policy refusing every PutObject (moto enforces principal-* statements)."""
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def allow_writes(bucket: str) -> None:
    client().delete_bucket_policy(Bucket=bucket)
