"""SSRF-safe streaming download of https (and, for local testing, http) audio URLs (issue 6).

Every hop (the first request and each redirect) is parsed and checked by `utils.url_policy`, and the
connection goes to an address that was checked: the urllib3 pool is opened on the IP itself, while TLS
uses the host name for SNI and certificate verification and the Host header names the host. There is no
second DNS lookup between check and connect, and urllib3 pools ignore proxy environment variables.

Limits: `config.MAX_DOWNLOAD_BYTES` against Content-Length before reading and against the bytes read;
`config.DOWNLOAD_TIMEOUT_SECONDS` over the whole transfer, redirects included (every socket read is
bounded by the time left, so a server dripping one byte a second is cut at the deadline); DNS lookups
are not interruptible and are only counted.
"""

import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
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
from utils import url_policy
from utils.errors import (
    DownloadTooLargeError,
    EmptyAudioError,
    FetchError,
    FetchTimeoutError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    UrlRejectedError,
)

logger = logging.getLogger(__name__)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Only a short alphanumeric extension of the URL path is kept, as a hint for ffmpeg's probing.
_EXTENSION_HINT = re.compile(r"\.[a-z0-9]{1,5}")
_USER_AGENT = "parakeet-worker"


def download_http(url: str, job_dir: Path) -> Path:
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
    deadline = time.monotonic() + config.DOWNLOAD_TIMEOUT_SECONDS
    current_url = url
    target = url_policy.parse_http_url(current_url)
    redirects = 0
    while True:
        addresses = url_policy.resolve_allowed_addresses(target)
        logger.info("fetching %s", target.display)
        with _exchange(target, addresses, deadline) as response:
            if response.status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(
                        f"audio_url: {target.host} answered HTTP {response.status} without a Location"
                    )
                if redirects == config.MAX_REDIRECTS:
                    raise FetchError(f"audio_url redirected more than {config.MAX_REDIRECTS} times")
                redirects += 1
                try:
                    current_url = urljoin(current_url, location)
                except ValueError:
                    raise UrlRejectedError("audio_url redirected to an invalid URL") from None
                target = url_policy.parse_http_url(current_url)
                logger.info("redirected (%d) to %s", redirects, target.display)
                continue
            _check_status(response.status, target)
            path = _save_body(response, target, job_dir, deadline)
        logger.info("downloaded %d bytes from %s", path.stat().st_size, target.display)
        return path


@contextmanager
def _exchange(
    target: url_policy.HttpTarget, addresses: list[url_policy.IPAddress], deadline: float
) -> Iterator[BaseHTTPResponse]:
    """Sends the GET to the first of the checked addresses that accepts a connection.

    Yields the response with its body unread; the connection is closed when the block ends.
    """
    connect_failures: list[ConnectTimeoutError] = []
    for address in addresses:
        remaining = _time_left(deadline, target)
        timeout = Timeout(connect=min(config.DOWNLOAD_CONNECT_TIMEOUT_SECONDS, remaining), read=remaining)
        pool = _pinned_pool(target, address, timeout)
        try:
            with _translated_errors(target):
                try:
                    response = pool.urlopen(
                        "GET",
                        target.request_target,
                        headers={
                            "Host": target.host_header,
                            "User-Agent": _USER_AGENT,
                            "Accept": "*/*",
                            # The bytes are saved as sent: no decompression, so no decompression bomb.
                            "Accept-Encoding": "identity",
                        },
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
        raise FetchTimeoutError(f"audio_url: connecting to {target.host} timed out")
    raise FetchError(f"audio_url: could not connect to {target.host} port {target.port}")


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
def _translated_errors(target: url_policy.HttpTarget) -> Iterator[None]:
    """Turns urllib3 and socket failures into one-line fetch errors (no URL, no query string)."""
    try:
        yield
    except (ReadTimeoutError, TimeoutError):
        raise FetchTimeoutError(
            f"audio_url: the download from {target.host} did not finish within "
            f"{config.DOWNLOAD_TIMEOUT_SECONDS:g} s"
        ) from None
    except SSLError:
        raise FetchError(
            f"audio_url: the TLS connection to {target.host} failed (certificate not valid for the host?)"
        ) from None
    except ProtocolError:
        raise FetchError(
            f"audio_url: the connection to {target.host} broke off during the download"
        ) from None
    except (HTTPError, OSError) as exc:
        # `from None`: urllib3 exceptions may quote the request, whose query can be a credential.
        logger.warning("fetch of %s failed: %s", target.display, type(exc).__name__)
        raise FetchError(f"audio_url: fetching from {target.host} failed ({type(exc).__name__})") from None


def _check_status(status: int, target: url_policy.HttpTarget) -> None:
    """Maps a non-2xx status to the error a client can act on."""
    if 200 <= status < 300:
        return
    if status in (404, 410):
        raise SourceNotFoundError(f"audio_url returned HTTP {status} (not found) from {target.host}")
    if status in (401, 403):
        raise SourceAccessDeniedError(
            f"audio_url returned HTTP {status} (access denied) from {target.host}; "
            "a presigned URL may have expired"
        )
    raise FetchError(f"audio_url returned HTTP {status} from {target.host}")


def _save_body(
    response: BaseHTTPResponse, target: url_policy.HttpTarget, job_dir: Path, deadline: float
) -> Path:
    """Streams the body into a new file in `job_dir`, enforcing the byte cap and the deadline."""
    cap = config.MAX_DOWNLOAD_BYTES
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > cap:
        raise DownloadTooLargeError(f"audio_url is {int(declared)} bytes; the limit is {cap} bytes")
    fd, name = tempfile.mkstemp(dir=job_dir, prefix="source-", suffix=_extension_hint(target))
    path = Path(name)
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                _bound_next_read(response, _time_left(deadline, target))
                chunk = response.read1(config.DOWNLOAD_CHUNK_BYTES, decode_content=False)
                if not chunk:
                    break
                total += len(chunk)
                # Counted as read: a Content-Length that lies (or its absence) does not lift the cap.
                if total > cap:
                    raise DownloadTooLargeError(f"audio_url is larger than the limit of {cap} bytes")
                out.write(chunk)
        if total == 0:
            raise EmptyAudioError(f"audio_url returned an empty body from {target.host}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _bound_next_read(response: BaseHTTPResponse, seconds: float) -> None:
    """Shrinks the socket timeout to `seconds`, so the next read cannot outlive the deadline."""
    connection = response.connection
    if connection is not None and connection.sock is not None:
        connection.sock.settimeout(seconds)


def _time_left(deadline: float, target: url_policy.HttpTarget) -> float:
    """Returns the seconds left before `deadline`, raising FetchTimeoutError when none are."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimeoutError(
            f"audio_url: the download from {target.host} did not finish within "
            f"{config.DOWNLOAD_TIMEOUT_SECONDS:g} s"
        )
    return remaining


def _extension_hint(target: url_policy.HttpTarget) -> str:
    """Returns a short, safe extension from the URL path ("" when there is none)."""
    path = target.request_target.partition("?")[0]
    suffix = PurePosixPath(unquote(path)).suffix.lower()
    return suffix if _EXTENSION_HINT.fullmatch(suffix) else ""
