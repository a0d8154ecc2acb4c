"""A real S3-compatible server on 127.0.0.1 (moto) and fixtures that point the worker at it.

Registered in tests/conftest.py, so any test can ask for:
- `s3_server` (session): the running server, its bucket and a boto3 client to seed objects with.
- `denied_bucket` (session): a bucket whose policy denies everything (S3 answers 403).
- `local_s3` (function): the same server, with `config` patched so that the worker's s3:// client and
  its http downloader reach it (S3_*, ALLOW_HTTP, ALLOW_PRIVATE_ADDRESSES), S3 clients reset before and
  after, and every outgoing connection of the test checked to be loopback (`loopback_only`).
"""

import ipaddress
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

import config
from utils import sources

BUCKET = "parakeet-audio"
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class LocalS3:
    """A running moto S3 server and the credentials and bucket the tests use."""

    endpoint_url: str
    bucket: str
    client: Any
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def put(self, key: str, data: bytes, bucket: str | None = None) -> str:
        """Uploads `data` and returns the object's s3:// URI.

        Args:
            key: The object key.
            data: The object's bytes.
            bucket: The bucket (default: the fixture's bucket).

        Returns:
            "s3://bucket/key".
        """
        bucket = bucket or self.bucket
        self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"

    def presigned_get(self, key: str, bucket: str | None = None, expires_in: int = 600) -> str:
        """Returns a real presigned GET URL (http://127.0.0.1:port/bucket/key?X-Amz-…) for an object.

        Args:
            key: The object key (it need not exist).
            bucket: The bucket (default: the fixture's bucket).
            expires_in: Seconds of validity.

        Returns:
            The presigned URL.
        """
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket or self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def presigned_put(self, key: str, bucket: str | None = None, expires_in: int = 600) -> str:
        """Returns a real presigned PUT URL for an object, signing Content-Type: application/json.

        Args:
            key: The object key.
            bucket: The bucket (default: the fixture's bucket).
            expires_in: Seconds of validity.

        Returns:
            The presigned URL.
        """
        return presigned_put_url(self.client, bucket or self.bucket, key, expires_in)

    def stored(self, key: str, bucket: str | None = None) -> tuple[bytes, str]:
        """Returns an object's bytes and Content-Type.

        Args:
            key: The object key.
            bucket: The bucket (default: the fixture's bucket).

        Returns:
            (body, content type).
        """
        response = self.client.get_object(Bucket=bucket or self.bucket, Key=key)
        return response["Body"].read(), response["ContentType"]


def presigned_put_url(client: Any, bucket: str, key: str, expires_in: int = 600) -> str:
    """Returns a presigned PUT URL from `client` that signs Content-Type: application/json.

    Args:
        client: The boto3 S3 client that signs.
        bucket: The bucket.
        key: The object key.
        expires_in: Seconds of validity.

    Returns:
        The presigned URL.
    """
    return client.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": "application/json"},
        ExpiresIn=expires_in,
    )


def _test_client(endpoint_url: str) -> Any:
    """Builds the tests' own S3 client (path-style, no proxies from the environment)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, proxies={}),
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """Runs moto's S3 server on 127.0.0.1 (a free port) for the whole session, with one bucket."""
    # Imported here: moto takes seconds to import, and only sessions that use the server should pay.
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    client = _test_client(endpoint_url)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield LocalS3(endpoint_url=endpoint_url, bucket=BUCKET, client=client)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def denied_bucket(s3_server: LocalS3) -> str:
    """A bucket holding `secret.wav` whose policy denies every object action (a real S3 403)."""
    bucket = "parakeet-denied"
    s3_server.client.create_bucket(Bucket=bucket)
    s3_server.put("secret.wav", b"RIFF-not-really-audio", bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }
    s3_server.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return bucket


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if anything in this process opens a TCP connection to a non-loopback address."""
    real_connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).partition("%")[0]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise AssertionError(f"test tried to connect to non-loopback address {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture
def local_s3(s3_server: LocalS3, monkeypatch: pytest.MonkeyPatch, loopback_only: None) -> Iterator[LocalS3]:
    """Points the worker's S3 settings at the local server and admits http and loopback URLs."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "S3_ENDPOINT", s3_server.endpoint_url)
    monkeypatch.setattr(config, "S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setattr(config, "S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setattr(config, "S3_REGION", s3_server.region)
    monkeypatch.setattr(config, "S3_BUCKET", s3_server.bucket)
    monkeypatch.setattr(config, "ALLOW_HTTP", True)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", True)
    sources.s3.reset_clients()
    yield s3_server
    sources.s3.reset_clients()
