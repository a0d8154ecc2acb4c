"""SSRF-safe streaming download of https (and, for local testing, http) audio URLs, and upload of
results to a client's presigned PUT URL.

Every hop (the first request and each redirect) is parsed and checked by `utils.url_policy`, and the
connection goes to an address that was checked: the urllib3 pool is opened on the IP itself, while TLS
uses the host name for SNI and certificate verification and the Host header names the host. There is no
second DNS lookup between check and connect, and urllib3 pools ignore proxy environment variables.

Limits: `config.MAX_DOWNLOAD_BYTES` against Content-Length before reading and against the bytes read;
`config.DOWNLOAD_TIMEOUT_SECONDS` over the whole transfer, redirects included (every socket read is
bounded by the time left, so a server dripping one byte a second is cut at the deadline); DNS lookups
are not interruptible and are only counted. Uploads follow the same address rules, no redirects, and
the same deadline, checked between body chunks.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

import config
from utils.errors import (
    FIELD,
    FetchError,
    FetchTimeoutError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    UrlRejectedError,
)
from utils.job.deadline import cap_to_job
from utils.sources import capped_file, url_policy

logger = logging.getLogger(__name__)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "parakeet-worker"


@dataclass(frozen=True)
class _Transfer:
    """One kind of request, with the words its error messages use."""

    method: str
    noun: str  # "the download from <host> did not finish"
    preposition: str
    gerund: str  # "fetching from <host> failed"


_DOWNLOAD = _Transfer("GET", "download", "from", "fetching")
_UPLOAD = _Transfer("PUT", "upload", "to", "uploading")


def download(url: str, job_dir: Path) -> Path:
    """Downloads an http(s) URL into `job_dir`, following at most `config.MAX_REDIRECTS` redirects.

    Args:
        url: The client's audio_url (https://, or http:// when `config.ALLOW_HTTP`).
        job_dir: The job's temporary directory; the file is created there.

    Returns:
        The path of the downloaded file inside `job_dir`.

    Raises:
        UrlRejectedError: The URL or a redirect target breaks the scheme, host or address rules.
        SourceNotFoundError: HTTP 404 or 410.
        SourceAccessDeniedError: HTTP 401 or 403 (an expired or wrongly signed presigned URL).
        DownloadTooLargeError: The body is, or says it is, larger than `config.MAX_DOWNLOAD_BYTES`.
        FetchTimeoutError: The transfer did not finish within `config.DOWNLOAD_TIMEOUT_SECONDS`.
        EmptyAudioError: The server answered with an empty body.
        FetchError: DNS, connection, TLS or protocol failures, other HTTP errors, too many redirects.
    """
    deadline = time.monotonic() + cap_to_job(config.DOWNLOAD_TIMEOUT_SECONDS)
    current_url = url
    target = url_policy.parse_http_url(current_url)
    redirects = 0
    while True:
        addresses = url_policy.resolve_allowed_addresses(target)
        logger.info("fetching %s", target.display)
        with _exchange(target, addresses, deadline, _DOWNLOAD) as response:
            if response.status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(
                        f"{FIELD}: {target.host} answered HTTP {response.status} without a Location"
                    )
                if redirects == config.MAX_REDIRECTS:
                    raise FetchError(f"{FIELD} redirected more than {config.MAX_REDIRECTS} times")
                redirects += 1
                try:
                    current_url = urljoin(current_url, location)
                except ValueError:
                    raise UrlRejectedError(f"{FIELD} redirected to an invalid URL") from None
                target = url_policy.parse_http_url(current_url)
                logger.info("redirected (%d) to %s", redirects, target.display)
                continue
            _check_status(response.status, target)
            path = _save_body(response, target, job_dir, deadline)
        logger.info("downloaded %d bytes from %s", path.stat().st_size, target.display)
        return path


def upload(url: str, body: bytes, content_type: str) -> None:
    """PUTs `body` to an https (presigned) URL, under the same address rules as downloads.

    Redirects are not followed: a presigned PUT names its final target, and sending the body on to
    wherever a server points would let that server pick the destination.

    Args:
        url: The client's output_url (https://, or http:// when `config.ALLOW_HTTP`).
        body: The bytes to store.
        content_type: Their MIME type (a presigned URL may have signed it; it is sent exactly).

    Raises:
        UrlRejectedError: The URL breaks the scheme, host or address rules.
        SourceAccessDeniedError: HTTP 401 or 403 (an expired or wrongly signed presigned URL).
        FetchTimeoutError: The upload did not finish within `config.DOWNLOAD_TIMEOUT_SECONDS`, or the
            server took no part of the body for `config.DOWNLOAD_CONNECT_TIMEOUT_SECONDS`.
        FetchError: DNS, connection, TLS or protocol failures, a redirect, any other non-2xx answer.
    """
    deadline = time.monotonic() + cap_to_job(config.DOWNLOAD_TIMEOUT_SECONDS)
    target = url_policy.parse_http_url(url)
    addresses = url_policy.resolve_allowed_addresses(target)
    logger.info("uploading %d bytes to %s", len(body), target.display)
    headers = {"Content-Type": content_type}
    with _exchange(target, addresses, deadline, _UPLOAD, body, headers) as response:
        _check_upload_status(response.status, target)
    logger.info("uploaded %d bytes to %s", len(body), target.display)


@contextmanager
def _exchange(
    target: url_policy.HttpTarget,
    addresses: list[url_policy.IPAddress],
    deadline: float,
    transfer: _Transfer,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[BaseHTTPResponse]:
    """Sends the request to the first of the checked addresses that accepts a connection.

    Yields the response with its body unread; the connection is closed when the block ends.
    """
    connect_failures: list[ConnectTimeoutError] = []
    for address in addresses:
        remaining = _time_left(deadline, target, transfer)
        # `total`: the wait for the response gets what is left after connecting and sending.
        timeout = Timeout(connect=min(config.DOWNLOAD_CONNECT_TIMEOUT_SECONDS, remaining), total=remaining)
        pool = _pinned_pool(target, address, timeout)
        request_headers = {
            "Host": target.host_header,
            "User-Agent": _USER_AGENT,
            "Accept": "*/*",
            # The bytes are saved as sent: no decompression, so no decompression bomb.
            "Accept-Encoding": "identity",
            **(headers or {}),
        }
        if body is not None:
            # Given explicitly, so that the chunks below go out as one plain body (S3 refuses chunked
            # transfer encoding on PUT).
            request_headers["Content-Length"] = str(len(body))
        try:
            with _translated_errors(target, transfer):
                try:
                    response = pool.urlopen(
                        transfer.method,
                        target.request_target,
                        body=None if body is None else _body_chunks(body, deadline, target, transfer),
                        headers=request_headers,
                        redirect=False,
                        retries=False,
                        assert_same_host=False,
                        preload_content=False,
                        decode_content=False,
                    )
                except ConnectTimeoutError as exc:
                    # NewConnectionError is a subclass: refused or unreachable. Nothing was sent yet,
                    # so the next checked address may be tried.
                    logger.info("could not connect to %s at %s: %s", target.host, address, type(exc).__name__)
                    connect_failures.append(exc)
                    continue
                try:
                    yield response
                finally:
                    response.close()
            return
        finally:
            pool.close()
    if all(not isinstance(exc, NewConnectionError) for exc in connect_failures):
        raise FetchTimeoutError(f"{FIELD}: connecting to {target.host} timed out")
    raise FetchError(f"{FIELD}: could not connect to {target.host} port {target.port}")


def _body_chunks(
    body: bytes, deadline: float, target: url_policy.HttpTarget, transfer: _Transfer
) -> Iterator[memoryview]:
    """Yields `body` in chunks, checking the deadline before each.

    Each chunk is one socket send bounded by the connect timeout (urllib3 sends with it), so a server
    that stops reading is cut after that long, and a slow one at the deadline; one send of the whole
    body would instead have to finish within the connect timeout.
    """
    view = memoryview(body)
    for start in range(0, len(body), config.DOWNLOAD_CHUNK_BYTES):
        _time_left(deadline, target, transfer)
        yield view[start : start + config.DOWNLOAD_CHUNK_BYTES]


def _pinned_pool(
    target: url_policy.HttpTarget, address: url_policy.IPAddress, timeout: Timeout
) -> HTTPConnectionPool:
    """Returns a one-connection pool that connects to `address` but speaks to `target.host`."""
    if target.scheme == "https":
        return HTTPSConnectionPool(
            str(address),
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            # SNI and certificate verification use the host name, not the IP the socket goes to.
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return HTTPConnectionPool(str(address), target.port, timeout=timeout, maxsize=1, retries=False)


@contextmanager
def _translated_errors(target: url_policy.HttpTarget, transfer: _Transfer) -> Iterator[None]:
    """Turns urllib3 and socket failures into one-line fetch errors (no URL, no query string)."""
    try:
        yield
    except (ReadTimeoutError, TimeoutError):
        raise FetchTimeoutError(
            f"{FIELD}: the {transfer.noun} {transfer.preposition} {target.host} did not finish "
            f"within {config.DOWNLOAD_TIMEOUT_SECONDS:g} s"
        ) from None
    except SSLError:
        raise FetchError(
            f"{FIELD}: the TLS connection to {target.host} failed (certificate not valid for the host?)"
        ) from None
    except ProtocolError as exc:
        # urllib3 reports a send that timed out (the server stopped reading the body) as an aborted
        # connection wrapping the timeout.
        if any(isinstance(arg, TimeoutError) for arg in exc.args):
            raise FetchTimeoutError(
                f"{FIELD}: {target.host} stopped taking the {transfer.noun} (sending timed out)"
            ) from None
        raise FetchError(
            f"{FIELD}: the connection to {target.host} broke off during the {transfer.noun}"
        ) from None
    except (HTTPError, OSError) as exc:
        # `from None`: urllib3 exceptions may quote the request, whose query can be a credential.
        logger.warning("%s %s failed: %s", transfer.method, target.display, type(exc).__name__)
        raise FetchError(
            f"{FIELD}: {transfer.gerund} {transfer.preposition} {target.host} failed ({type(exc).__name__})"
        ) from None


def _check_status(status: int, target: url_policy.HttpTarget) -> None:
    """Maps a download's non-2xx status to the error a client can act on."""
    if 200 <= status < 300:
        return
    if status in (404, 410):
        raise SourceNotFoundError(f"{FIELD} returned HTTP {status} (not found) from {target.host}")
    if status in (401, 403):
        raise SourceAccessDeniedError(
            f"{FIELD} returned HTTP {status} (access denied) from {target.host}; "
            "a presigned URL may have expired"
        )
    raise FetchError(f"{FIELD} returned HTTP {status} from {target.host}")


def _check_upload_status(status: int, target: url_policy.HttpTarget) -> None:
    """Maps an upload's non-2xx status to the error a client can act on."""
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise SourceAccessDeniedError(
            f"{FIELD} returned HTTP {status} (access denied) from {target.host}; "
            "a presigned PUT URL may have expired or been signed for another content type"
        )
    if status in _REDIRECT_STATUSES:
        raise FetchError(
            f"{FIELD} returned HTTP {status} (a redirect) from {target.host}; uploads do not follow "
            "redirects, so send the final presigned PUT URL"
        )
    raise FetchError(f"{FIELD} returned HTTP {status} from {target.host}")


def _save_body(
    response: BaseHTTPResponse, target: url_policy.HttpTarget, job_dir: Path, deadline: float
) -> Path:
    """Streams the body into a new file in `job_dir`, enforcing the byte cap and the deadline."""
    declared = response.headers.get("Content-Length", "").strip()
    return capped_file.save_stream(
        _response_chunks(response, target, deadline),
        job_dir,
        capped_file.extension_hint(unquote(target.request_target.partition("?")[0])),
        int(declared) if declared.isdigit() else None,
        f"{FIELD} returned an empty body from {target.host}",
    )


def _response_chunks(
    response: BaseHTTPResponse, target: url_policy.HttpTarget, deadline: float
) -> Iterator[bytes]:
    """Yields the body as read, each socket read bounded by the time left before `deadline`."""
    while True:
        _bound_next_read(response, _time_left(deadline, target, _DOWNLOAD))
        chunk = response.read1(config.DOWNLOAD_CHUNK_BYTES, decode_content=False)
        if not chunk:
            return
        yield chunk


def _bound_next_read(response: BaseHTTPResponse, seconds: float) -> None:
    """Shrinks the socket timeout to `seconds`, so the next read cannot outlive the deadline."""
    connection = response.connection
    if connection is not None and connection.sock is not None:
        connection.sock.settimeout(seconds)


def _time_left(deadline: float, target: url_policy.HttpTarget, transfer: _Transfer) -> float:
    """Returns the seconds left before `deadline`, raising FetchTimeoutError when none are."""
    # The job's own time counts too: a cancelled job stops at the next chunk.
    remaining = cap_to_job(deadline - time.monotonic())
    if remaining <= 0:
        raise FetchTimeoutError(
            f"{FIELD}: the {transfer.noun} {transfer.preposition} {target.host} did not finish "
            f"within {config.DOWNLOAD_TIMEOUT_SECONDS:g} s"
        )
    return remaining
