"""Audio sources (inline base64, https URLs, s3:// objects) and result uploads to `output_url`.

The handler calls `save_base64` for `audio_base64` and `download` for `audio_url`. Every file is created
inside the given job directory (which the handler removes when the job ends); a failed download removes
its partial file at once. A result too large to return is sent with `upload` to `output_url` (a
presigned PUT URL or s3://), which `check_output_url` checks before any work is done. https transfers
and their SSRF rules live in `utils.http_fetch` and `utils.url_policy`.

s3:// URIs are read and written with the worker's own credentials (`config.S3_*`). The S3 endpoint is
chosen by the operator, not the client, so it is not subject to the SSRF address rules.
"""

import base64
import binascii
import functools
import logging
import os
import re
import tempfile
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
from utils import source_file, url_policy
from utils.deadline import cap_to_job
from utils.errors import (
    EmptyAudioError,
    FetchError,
    FetchTimeoutError,
    InvalidInputError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    UrlRejectedError,
)
from utils.http_fetch import download_http, upload_http

logger = logging.getLogger(__name__)

_ASCII_WHITESPACE = str.maketrans("", "", " \t\r\n\v\f")
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


def save_base64(encoded: str, job_dir: Path) -> Path:
    """Decodes inline audio and writes it to a new file in `job_dir`.

    ASCII whitespace (spaces, tabs, line breaks) is removed before decoding, so base64 wrapped at 76
    columns (the MIME and `base64` CLI default) is accepted; anything else outside the standard
    alphabet, or wrong padding, is refused. The `data:` prefix was already removed by validation.

    Args:
        encoded: The base64 text of the audio file.
        job_dir: The job's temporary directory.

    Returns:
        The path of the written file.

    Raises:
        InvalidInputError: `encoded` is not valid standard base64.
        EmptyAudioError: It decodes to zero bytes.
    """
    try:
        data = base64.b64decode(encoded.translate(_ASCII_WHITESPACE), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"audio_base64 is not valid base64: {exc}") from None
    if not data:
        raise EmptyAudioError("audio_base64 decodes to zero bytes")
    fd, name = tempfile.mkstemp(dir=job_dir, prefix="source-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


def download(url: str, job_dir: Path) -> Path:
    """Fetches `audio_url` into a new file in `job_dir`.

    Supported forms: `https://…` (any public host, e.g. a presigned S3 URL), `http://…` only when
    `config.ALLOW_HTTP`, and `s3://bucket/key` read with the worker's S3 credentials. The key is taken
    literally (no percent-decoding; "?" and "#" are part of it), as the AWS CLI does. `s3:///key` (empty
    bucket) reads `key` from the default bucket `config.S3_BUCKET`.

    Args:
        url: The client's audio_url.
        job_dir: The job's temporary directory.

    Returns:
        The path of the downloaded file inside `job_dir`.

    Raises:
        UrlRejectedError: Unsupported scheme (file, ftp, data, none, …) or a host/address not allowed.
        InvalidInputError: A malformed s3:// URI (bad bucket name, missing key).
        SourceNotFoundError: The URL or object does not exist.
        SourceAccessDeniedError: Access refused, or S3 credentials not configured.
        DownloadTooLargeError: Larger than `config.MAX_DOWNLOAD_BYTES`.
        FetchTimeoutError: Not finished within `config.DOWNLOAD_TIMEOUT_SECONDS`.
        EmptyAudioError: The source holds zero bytes.
        FetchError: Any other network, protocol or server failure.
    """
    scheme = url_policy.url_scheme(url)
    if scheme == "s3":
        return _download_s3(url, job_dir)
    if scheme in ("https", "http"):
        return download_http(url, job_dir)
    raise UrlRejectedError(f"audio_url scheme {scheme!r} is not allowed; use https:// or s3://")


def upload(url: str, body: bytes, content_type: str) -> None:
    """Stores `body` at the client's `output_url`.

    Supported forms: `https://…` (a presigned PUT URL; redirects are not followed), `http://…` only when
    `config.ALLOW_HTTP`, and `s3://bucket/key` written with the worker's S3 credentials (read literally,
    as in `download`; `s3:///key` writes to `config.S3_BUCKET`).

    Args:
        url: The client's output_url.
        body: The bytes to store.
        content_type: Their MIME type, sent as the object's Content-Type.

    Raises:
        UrlRejectedError: Unsupported scheme or a host/address not allowed.
        InvalidInputError: A malformed s3:// URI.
        SourceNotFoundError: The s3:// bucket does not exist.
        SourceAccessDeniedError: Access refused (HTTP 401/403, S3 AccessDenied), or S3 credentials not
            configured.
        FetchTimeoutError: The upload did not finish in time.
        FetchError: Any other network, protocol or server failure, or an https redirect.
    """
    if _output_scheme(url) == "s3":
        _upload_s3(url, body, content_type)
    else:
        upload_http(url, body, content_type)


def check_output_url(url: str) -> None:
    """Checks `output_url` as `upload` will, without uploading, so that a bad one fails the job early.

    https/http URLs get the form, scheme, host allowlist and address checks (resolving the host, which
    sends a DNS query and nothing else); s3:// URIs get the form check and need S3 credentials. The
    upload checks again: DNS may answer differently by then.

    Args:
        url: The client's output_url.

    Raises:
        UrlRejectedError: Unsupported scheme, malformed http(s) URL, or a host/address not allowed.
        InvalidInputError: A malformed s3:// URI.
        SourceAccessDeniedError: An s3:// URI, but S3 credentials are not configured.
        FetchError: The host name does not resolve.
    """
    if _output_scheme(url) == "s3":
        parse_s3_uri(url, "output_url")
        _require_credentials("output_url")
    else:
        target = url_policy.parse_http_url(url, "output_url")
        url_policy.resolve_allowed_addresses(target, "output_url")


def _output_scheme(url: str) -> str:
    """Returns the scheme of an output_url, refusing those that uploads do not support."""
    scheme = url_policy.url_scheme(url, "output_url")
    if scheme not in ("s3", "https", "http"):
        raise UrlRejectedError(f"output_url scheme {scheme!r} is not allowed; use https:// or s3://")
    return scheme


def reset_clients() -> None:
    """Forgets the cached S3 clients (tests call this when they change the S3 configuration)."""
    _s3_client.cache_clear()


def parse_s3_uri(url: str, field: str = "audio_url") -> tuple[str, str]:
    """Splits an s3:// URI into bucket and key.

    Args:
        url: A URI whose scheme is s3 (any letter case).
        field: The input field that named it, for messages.

    Returns:
        (bucket, key); the bucket is `config.S3_BUCKET` for `s3:///key`.

    Raises:
        InvalidInputError: Not of the form s3://bucket/key, no key, an implausible bucket name, or
            `s3:///key` without `S3_BUCKET`.
    """
    if url[:5].lower() != "s3://":
        raise InvalidInputError(f"{field} is not of the form s3://bucket/key")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        if not config.S3_BUCKET:
            raise InvalidInputError(f"{field} names no bucket (s3:///key) and S3_BUCKET is not configured")
        bucket = config.S3_BUCKET
    if not _BUCKET_NAME.fullmatch(bucket):
        raise InvalidInputError(f"{field} bucket {bucket!r} is not a valid S3 bucket name")
    if not key:
        raise InvalidInputError(f"{field} names no object key; use s3://bucket/key")
    if len(key.encode("utf-8")) > 1024:
        raise InvalidInputError(f"{field} object key is longer than 1024 bytes")
    return bucket, key


def _require_credentials(field: str) -> None:
    """Refuses an s3:// URI in `field` when the worker has no S3 credentials to use it with."""
    if not config.S3_ACCESS_KEY or not config.S3_SECRET_KEY:
        raise SourceAccessDeniedError(
            f"{field} is an s3:// URI but this worker has no S3 credentials "
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


def _download_s3(url: str, job_dir: Path) -> Path:
    """Fetches an s3:// object into a new file in `job_dir`, mapping S3 failures to fetch errors."""
    deadline = time.monotonic() + cap_to_job(config.DOWNLOAD_TIMEOUT_SECONDS)
    bucket, key = parse_s3_uri(url)
    _require_credentials("audio_url")
    client = _worker_client()
    shown = f"s3://{bucket}/{key}"
    logger.info("fetching %s", shown)
    with _translated_s3_errors("audio_url", shown, f"fetching {shown} from S3"):
        path = _stream_object(client, bucket, key, job_dir, deadline, shown)
    logger.info("downloaded %d bytes from %s", path.stat().st_size, shown)
    return path


def _upload_s3(url: str, body: bytes, content_type: str) -> None:
    """Writes `body` to an s3:// object, mapping S3 failures to fetch errors."""
    bucket, key = parse_s3_uri(url, "output_url")
    _require_credentials("output_url")
    client = _worker_client()
    shown = f"s3://{bucket}/{key}"
    logger.info("uploading %d bytes to %s", len(body), shown)
    with _translated_s3_errors("output_url", shown, f"uploading to {shown}"):
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    logger.info("uploaded %d bytes to %s", len(body), shown)


@contextmanager
def _translated_s3_errors(field: str, shown: str, action: str) -> Iterator[None]:
    """Turns botocore failures into fetch errors naming `field`; `action` says what failed."""
    try:
        yield
    except ClientError as exc:
        raise _client_error(exc, field, shown, action) from None
    except (BotoConnectTimeoutError, BotoReadTimeoutError):
        raise FetchTimeoutError(f"{field}: S3 did not answer in time for {shown}") from None
    except BotoCoreError as exc:
        logger.warning("%s failed: %s", action, exc)
        raise FetchError(f"{field}: {action} failed ({type(exc).__name__})") from None


def _stream_object(client: Any, bucket: str, key: str, job_dir: Path, deadline: float, shown: str) -> Path:
    """Streams one object into a new file in `job_dir`; a failure removes the partial file."""
    # GetObject's ContentLength arrives with the headers, before any of the body is read, so no
    # separate HeadObject round trip is needed to refuse an oversized object.
    response = client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        return source_file.save_stream(
            _chunks_in_time(body, deadline, shown),
            job_dir,
            source_file.extension_hint(key),
            response.get("ContentLength"),
            f"audio_url object {shown} is empty",
        )
    finally:
        body.close()


def _chunks_in_time(body: Any, deadline: float, shown: str) -> Iterator[bytes]:
    """Yields the object's chunks, checking the deadline between them.

    Each socket read is bounded by the client's read timeout (S3_READ_TIMEOUT_SECONDS); the endpoint
    is the operator's, not a client's.
    """
    for chunk in body.iter_chunks(config.DOWNLOAD_CHUNK_BYTES):
        if time.monotonic() > deadline:
            raise FetchTimeoutError(
                f"audio_url: the download of {shown} did not finish within {config.DOWNLOAD_TIMEOUT_SECONDS:g} s"
            )
        yield chunk


def _client_error(exc: ClientError, field: str, shown: str, action: str) -> FetchError:
    """Maps an S3 error response to the client-facing error."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _S3_NOT_FOUND_CODES or status == 404:
        return SourceNotFoundError(f"{field}: {shown} was not found ({code or status})")
    if code in _S3_DENIED_CODES or status in (401, 403):
        return SourceAccessDeniedError(f"{field}: access to {shown} was denied ({code or status})")
    logger.warning("%s failed: %s %s", action, code, status)
    return FetchError(f"{field}: {action} failed ({code or status})")


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
