"""s3:// objects, read and written with the worker's own credentials (`config.S3_*`).

The key is taken literally (no percent-decoding; "?" and "#" are part of it), as the AWS CLI does, and
`s3:///key` (empty bucket) means `key` in the default bucket `config.S3_BUCKET`. The S3 endpoint is
chosen by the operator, not the client, so it is not subject to the SSRF address rules.
"""

import functools
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectTimeoutError as BotoConnectTimeoutError
from botocore.exceptions import ReadTimeoutError as BotoReadTimeoutError

import config
from utils.errors import (
    FIELD,
    FetchError,
    FetchTimeoutError,
    InvalidInputError,
    SourceAccessDeniedError,
    SourceNotFoundError,
)
from utils.job.deadline import cap_to_job
from utils.sources import capped_file

logger = logging.getLogger(__name__)

# Lenient enough for legacy us-east-1 names (uppercase, underscores) and R2/MinIO; strict enough that a
# bucket name cannot smuggle a path or a host into the request.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_S3_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_S3_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "Forbidden",
        "403",
        "401",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "AccountProblem",
        "ExpiredToken",
        "InvalidToken",
    }
)


def reset_clients() -> None:
    """Forgets the cached S3 clients (tests call this when they change the S3 configuration)."""
    _s3_client.cache_clear()


def parse_s3_uri(url: str) -> tuple[str, str]:
    """Splits an s3:// URI into bucket and key.

    Args:
        url: A URI whose scheme is s3 (any letter case).

    Returns:
        (bucket, key); the bucket is `config.S3_BUCKET` for `s3:///key`.

    Raises:
        InvalidInputError: Not of the form s3://bucket/key, no key, an implausible bucket name, or
            `s3:///key` without `S3_BUCKET`.
    """
    if url[:5].lower() != "s3://":
        raise InvalidInputError(f"{FIELD} is not of the form s3://bucket/key")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        if not config.S3_BUCKET:
            raise InvalidInputError(f"{FIELD} names no bucket (s3:///key) and S3_BUCKET is not configured")
        bucket = config.S3_BUCKET
    if not _BUCKET_NAME.fullmatch(bucket):
        raise InvalidInputError(f"{FIELD} bucket {bucket!r} is not a valid S3 bucket name")
    if not key:
        raise InvalidInputError(f"{FIELD} names no object key; use s3://bucket/key")
    if len(key.encode("utf-8")) > 1024:
        raise InvalidInputError(f"{FIELD} object key is longer than 1024 bytes")
    return bucket, key


def require_credentials() -> None:
    """Refuses an s3:// URI when the worker has no S3 credentials to use it with.

    Raises:
        SourceAccessDeniedError: S3_ACCESS_KEY or S3_SECRET_KEY is not configured.
    """
    if not config.S3_ACCESS_KEY or not config.S3_SECRET_KEY:
        raise SourceAccessDeniedError(
            f"{FIELD} is an s3:// URI but this worker has no S3 credentials "
            "(S3_ACCESS_KEY/S3_SECRET_KEY are not configured); send a presigned https URL instead"
        )


def _worker_client() -> Any:
    """Returns the S3 client for the current configuration."""
    return _s3_client(
        config.S3_ENDPOINT,
        config.S3_REGION,
        config.S3_ACCESS_KEY,
        config.S3_SECRET_KEY,
        config.DOWNLOAD_CONNECT_TIMEOUT_SECONDS,
        config.S3_READ_TIMEOUT_SECONDS,
    )


def download(url: str, job_dir: Path) -> Path:
    """Fetches an s3:// object into a new file in `job_dir`, mapping S3 failures to fetch errors."""
    deadline = time.monotonic() + cap_to_job(config.DOWNLOAD_TIMEOUT_SECONDS)
    bucket, key = parse_s3_uri(url)
    require_credentials()
    client = _worker_client()
    shown = f"s3://{bucket}/{key}"
    logger.info("fetching %s", shown)
    with _translated_s3_errors(shown, f"fetching {shown} from S3"):
        path = _stream_object(client, bucket, key, job_dir, deadline, shown)
    logger.info("downloaded %d bytes from %s", path.stat().st_size, shown)
    return path


def upload(url: str, body: bytes, content_type: str) -> None:
    """Writes `body` to an s3:// object, mapping S3 failures to fetch errors."""
    bucket, key = parse_s3_uri(url)
    require_credentials()
    client = _worker_client()
    shown = f"s3://{bucket}/{key}"
    logger.info("uploading %d bytes to %s", len(body), shown)
    with _translated_s3_errors(shown, f"uploading to {shown}"):
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    logger.info("uploaded %d bytes to %s", len(body), shown)


@contextmanager
def _translated_s3_errors(shown: str, action: str) -> Iterator[None]:
    """Turns botocore failures into fetch errors; `action` says what failed."""
    try:
        yield
    except ClientError as exc:
        raise _client_error(exc, shown, action) from None
    except (BotoConnectTimeoutError, BotoReadTimeoutError):
        raise FetchTimeoutError(f"{FIELD}: S3 did not answer in time for {shown}") from None
    except BotoCoreError as exc:
        logger.warning("%s failed: %s", action, exc)
        raise FetchError(f"{FIELD}: {action} failed ({type(exc).__name__})") from None


def _stream_object(client: Any, bucket: str, key: str, job_dir: Path, deadline: float, shown: str) -> Path:
    """Streams one object into a new file in `job_dir`; a failure removes the partial file."""
    # GetObject's ContentLength arrives with the headers, before any of the body is read, so no
    # separate HeadObject round trip is needed to refuse an oversized object.
    response = client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        return capped_file.save_stream(
            _chunks_in_time(body, deadline, shown),
            job_dir,
            capped_file.extension_hint(key),
            response.get("ContentLength"),
            f"{FIELD} object {shown} is empty",
        )
    finally:
        body.close()


def _chunks_in_time(body: Any, deadline: float, shown: str) -> Iterator[bytes]:
    """Yields the object's chunks, checking the deadline between them.

    Each socket read is bounded by the client's read timeout (S3_READ_TIMEOUT_SECONDS); the endpoint
    is the operator's, not a client's.
    """
    for chunk in body.iter_chunks(config.DOWNLOAD_CHUNK_BYTES):
        if cap_to_job(deadline - time.monotonic()) <= 0:  # the transfer's time, or the job's
            raise FetchTimeoutError(
                f"{FIELD}: the download of {shown} did not finish within "
                f"{config.DOWNLOAD_TIMEOUT_SECONDS:g} s"
            )
        yield chunk


def _client_error(exc: ClientError, shown: str, action: str) -> FetchError:
    """Maps an S3 error response to the client-facing error."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _S3_NOT_FOUND_CODES or status == 404:
        return SourceNotFoundError(f"{FIELD}: {shown} was not found ({code or status})")
    if code in _S3_DENIED_CODES or status in (401, 403):
        return SourceAccessDeniedError(f"{FIELD}: access to {shown} was denied ({code or status})")
    logger.warning("%s failed: %s %s", action, code, status)
    return FetchError(f"{FIELD}: {action} failed ({code or status})")


@functools.lru_cache(maxsize=4)
def _s3_client(
    endpoint: str | None,
    region: str,
    access_key: str,
    secret_key: str,
    connect_timeout: float,
    read_timeout: float,
) -> Any:
    """Builds an S3 client once per configuration (keyed by it, so a changed config gets a new one)."""
    options: dict[str, Any] = {}
    if endpoint:
        # R2 and MinIO want path-style requests (bucket in the path, not in the host name).
        options["s3"] = {"addressing_style": "path"}
    client_config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # One retry for throttling and 5xx (two attempts in all; botocore's "max_attempts" would count
        # retries only): more would only delay a job's error.
        retries={"total_max_attempts": 2, "mode": "standard"},
        **options,
    )
    # A session of its own: boto3's module-level default session is shared state, and batch items are
    # fetched from several threads.
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
    )
    return session.client("s3", endpoint_url=endpoint or None, config=client_config)
