"""Where audio comes from and where large results go: the one place that dispatches by scheme.

- `fetch` saves an item's audio into the job directory: `audio_base64` or an uploaded file (`inline`),
  an https URL (`https`, under the SSRF rules of `url_policy`) or an s3:// object (`s3`).
- `upload` stores a result at `output_url` (a presigned PUT URL or s3://); `check_output_url` checks
  one before any work is done.

Every file is created inside the given job directory (which the job removes when it ends); a failed
download removes its partial file at once. The steps below write their messages about "the field";
this module names it (`errors.WorkerError.named`).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from utils.contract.validation import UPLOAD_FIELD
from utils.errors import WorkerError
from utils.sources import https, inline, s3, url_policy

_SCHEMES = ("https", "http", "s3")


@contextmanager
def _naming(field: str) -> Iterator[None]:
    """Names `field` in the messages of the errors raised inside the block."""
    try:
        yield
    except WorkerError as error:
        raise error.named(field) from error.__cause__


def fetch(source_field: str, source: str, job_dir: Path) -> Path:
    """Saves one item's audio into a new file in `job_dir`.

    Args:
        source_field: "audio_base64", "audio_url", or "file" (a file the HTTP server received).
        source: The uploaded file's path, the base64 text (its `data:` prefix already removed) or the
            URL. URLs are `https://…` (any public host, e.g. a presigned S3 URL), `http://…` only when
            `config.ALLOW_HTTP`, or `s3://bucket/key` read with the worker's S3 credentials.
        job_dir: The job's temporary directory.

    Returns:
        The path of the saved file inside `job_dir`.

    Raises:
        InvalidInputError: Invalid base64, or a malformed s3:// URI.
        UrlRejectedError: Unsupported scheme (file, ftp, data, none, …) or a host/address not allowed.
        SourceNotFoundError: The URL or object does not exist.
        SourceAccessDeniedError: Access refused, or S3 credentials not configured.
        DownloadTooLargeError: Larger than `config.MAX_DOWNLOAD_BYTES`.
        FetchTimeoutError: Not finished within `config.DOWNLOAD_TIMEOUT_SECONDS`.
        EmptyAudioError: The source holds zero bytes.
        FetchError: Any other network, protocol or server failure.
    """
    with _naming(source_field):
        if source_field == "audio_base64":
            return inline.save_base64(source, job_dir)
        if source_field == UPLOAD_FIELD:
            return inline.take_upload(Path(source), job_dir)
        if url_policy.url_scheme(source, _SCHEMES) == "s3":
            return s3.download(source, job_dir)
        return https.download(source, job_dir)


def upload(url: str, body: bytes, content_type: str) -> None:
    """Stores `body` at the client's `output_url`.

    Supported forms: `https://…` (a presigned PUT URL; redirects are not followed), `http://…` only when
    `config.ALLOW_HTTP`, and `s3://bucket/key` written with the worker's S3 credentials (read literally,
    as for audio_url; `s3:///key` writes to `config.S3_BUCKET`).

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
    with _naming("output_url"):
        if url_policy.url_scheme(url, _SCHEMES) == "s3":
            s3.upload(url, body, content_type)
        else:
            https.upload(url, body, content_type)


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
    with _naming("output_url"):
        if url_policy.url_scheme(url, _SCHEMES) == "s3":
            s3.parse_s3_uri(url)
            s3.require_credentials()
        else:
            url_policy.resolve_allowed_addresses(url_policy.parse_http_url(url))
