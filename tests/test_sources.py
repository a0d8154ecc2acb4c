"""Audio sources (utils/sources/) against real servers on 127.0.0.1.

- moto's S3 server (tests/s3_server.py) with real presigned URLs and s3:// reads;
- a stdlib http.server origin for redirects, limits and misbehaving servers, plain and with TLS (a
  throwaway CA made here, trusted through SSL_CERT_FILE);
- a tiny S3-speaking server for what moto cannot do (answering 500 first, streaming without a length).

Name resolution is faked for every test (`fake_dns`): names resolve only to what a test installs, IP
literals resolve to themselves, and nothing reaches a real resolver. `loopback_only` fails any test that
tries to open a connection to a non-loopback address. Every test's `job_dir` fixture checks on teardown
that nothing was written next to the job directory.
"""

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

import config
from tests.support.fake_dns import FakeDns
from tests.support.origins import AUDIO, SECRET, FlakyS3Server, OriginServer
from tests.support.s3_server import LocalS3
from utils import sources
from utils.errors import (
    DownloadTooLargeError,
    EmptyAudioError,
    FetchError,
    FetchTimeoutError,
    InvalidInputError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    UrlRejectedError,
)

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- fixtures: job directory, DNS ----------------------------------------------------------------


@pytest.fixture
def job_dir(tmp_path: Path) -> Iterator[Path]:
    """A job directory inside tmp_path; on teardown, asserts nothing was written beside it."""
    directory = tmp_path / "job"
    directory.mkdir()
    yield directory
    assert [entry.name for entry in tmp_path.iterdir()] == ["job"]


def _files(directory: Path) -> list[Path]:
    """Returns the files in `directory`."""
    return sorted(directory.iterdir())


def _our_log(caplog: pytest.LogCaptureFixture) -> str:
    """Returns the worker's own log lines (urllib3's and botocore's DEBUG logs quote whole requests)."""
    return "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("utils."))


# --- base64 ----------------------------------------------------------------------------------------


def test_base64_is_decoded_into_a_new_file_in_the_job_dir(job_dir: Path) -> None:
    first = sources.fetch("audio_base64", base64.b64encode(AUDIO).decode(), job_dir)
    second = sources.fetch("audio_base64", base64.b64encode(b"other").decode(), job_dir)
    assert first.parent == job_dir
    assert second.parent == job_dir
    assert first != second
    assert first.read_bytes() == AUDIO
    assert second.read_bytes() == b"other"


def test_base64_wrapped_in_lines_and_spaces_is_accepted(job_dir: Path) -> None:
    encoded = base64.encodebytes(AUDIO).decode()  # MIME style: 76 columns, "\n" line ends
    assert "\n" in encoded
    messy = " " + encoded.replace("\n", "\r\n\t") + " "
    assert sources.fetch("audio_base64", messy, job_dir).read_bytes() == AUDIO


def test_url_safe_base64_is_refused_with_what_to_send_instead(job_dir: Path) -> None:
    encoded = base64.urlsafe_b64encode(bytes([0xFB, 0xFF, 0xBF]) * 4).decode()
    assert "-" in encoded or "_" in encoded
    with pytest.raises(InvalidInputError) as caught:
        sources.fetch("audio_base64", encoded, job_dir)
    assert str(caught.value).startswith("audio_base64 is URL-safe base64 ('-' and '_'); send standard base64")
    assert _files(job_dir) == []


@pytest.mark.parametrize(
    "encoded",
    ["UklGRg$=", "UklGR", "UklGRg=", "UklG-+==", "ÄÖÜß", "UklGRg==UklGRg=="],
)
def test_invalid_base64_is_refused(job_dir: Path, encoded: str) -> None:
    with pytest.raises(InvalidInputError, match="^audio_base64 is not valid base64: ") as caught:
        sources.fetch("audio_base64", encoded, job_dir)
    assert "\n" not in str(caught.value)
    assert _files(job_dir) == []


@pytest.mark.parametrize("encoded", ["", " \r\n"])
def test_base64_of_nothing_is_empty_audio(job_dir: Path, encoded: str) -> None:
    with pytest.raises(EmptyAudioError):
        sources.fetch("audio_base64", encoded, job_dir)
    assert _files(job_dir) == []


# --- schemes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("FILE:///etc/passwd", "scheme 'file' is not allowed"),
        ("ftp://audio.test/a.wav", "scheme 'ftp' is not allowed"),
        ("gopher://audio.test:70/_GET", "scheme 'gopher' is not allowed"),
        ("data:audio/wav;base64,UklGRg==", "scheme 'data' is not allowed"),
        ("jar:https://audio.test/a.jar!/a.wav", "scheme 'jar' is not allowed"),
        ("http://audio.test/a.wav", "scheme 'http' is not allowed"),
        ("audio.test/a.wav", "has no scheme"),
        ("//audio.test/a.wav", "has no scheme"),
        ("/etc/passwd", "has no scheme"),
    ],
)
def test_unsupported_urls_are_rejected_without_any_lookup(
    job_dir: Path, fake_dns: FakeDns, url: str, message: str
) -> None:
    with pytest.raises(UrlRejectedError, match=message):
        sources.fetch("audio_url", url, job_dir)
    assert fake_dns.lookups == []
    assert _files(job_dir) == []


def test_private_addresses_are_refused_by_default(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    with pytest.raises(UrlRejectedError, match=r"non-public address \(loopback\)"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/audio.wav", job_dir)
    assert origin.requests == []
    assert _files(job_dir) == []


# --- presigned URLs and s3:// against moto ---------------------------------------------------------


def test_presigned_url_downloads_the_object(job_dir: Path, local_s3: LocalS3) -> None:
    local_s3.put("speech/clip.wav", AUDIO)
    path = sources.fetch("audio_url", local_s3.presigned_get("speech/clip.wav"), job_dir)
    assert _files(job_dir) == [path]
    assert path.suffix == ".wav"
    assert path.read_bytes() == AUDIO


def test_presigned_url_of_a_missing_object_is_not_found_and_hides_the_signature(
    job_dir: Path, local_s3: LocalS3, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="utils")
    url = local_s3.presigned_get("speech/missing.wav")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    with pytest.raises(SourceNotFoundError, match="HTTP 404") as caught:
        sources.fetch("audio_url", url, job_dir)
    assert signature not in str(caught.value)
    assert "X-Amz" not in str(caught.value)
    ours = _our_log(caplog)
    assert "speech/missing.wav" in ours
    assert signature not in ours
    assert "X-Amz" not in ours
    assert _files(job_dir) == []


def test_presigned_url_denied_by_the_bucket_is_access_denied(
    job_dir: Path, local_s3: LocalS3, denied_bucket: str
) -> None:
    with pytest.raises(SourceAccessDeniedError, match="HTTP 403"):
        sources.fetch("audio_url", local_s3.presigned_get("secret.wav", bucket=denied_bucket), job_dir)
    assert _files(job_dir) == []


def test_s3_uri_is_read_with_the_worker_credentials(job_dir: Path, local_s3: LocalS3) -> None:
    url = local_s3.put("speech/clip.flac", AUDIO)
    path = sources.fetch("audio_url", url, job_dir)
    assert _files(job_dir) == [path]
    assert path.suffix == ".flac"
    assert path.read_bytes() == AUDIO


def test_s3_key_is_taken_literally(job_dir: Path, local_s3: LocalS3) -> None:
    local_s3.put("odd name?v=1#2.wav", AUDIO)
    assert (
        sources.fetch("audio_url", f"s3://{local_s3.bucket}/odd name?v=1#2.wav", job_dir).read_bytes()
        == AUDIO
    )


def test_s3_uri_without_bucket_uses_the_default_bucket(job_dir: Path, local_s3: LocalS3) -> None:
    local_s3.put("default/clip.wav", AUDIO)
    assert sources.fetch("audio_url", "s3:///default/clip.wav", job_dir).read_bytes() == AUDIO


@pytest.mark.parametrize("where", ["missing key", "missing bucket"])
def test_s3_uri_of_a_missing_object_is_not_found(job_dir: Path, local_s3: LocalS3, where: str) -> None:
    url = (
        f"s3://{local_s3.bucket}/nothing/here.wav" if where == "missing key" else "s3://no-such-bucket/a.wav"
    )
    with pytest.raises(SourceNotFoundError, match=r"NoSuch(Key|Bucket)"):
        sources.fetch("audio_url", url, job_dir)
    assert _files(job_dir) == []


def test_s3_uri_denied_by_the_bucket_is_access_denied(
    job_dir: Path, local_s3: LocalS3, denied_bucket: str
) -> None:
    with pytest.raises(SourceAccessDeniedError, match=f"s3://{denied_bucket}/secret.wav was denied"):
        sources.fetch("audio_url", f"s3://{denied_bucket}/secret.wav", job_dir)
    assert _files(job_dir) == []


def test_s3_object_over_the_cap_is_refused_by_its_length(
    job_dir: Path, local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", len(AUDIO) - 1)
    url = local_s3.put("speech/big.wav", AUDIO)
    with pytest.raises(DownloadTooLargeError, match=f"{len(AUDIO)} bytes; the limit is {len(AUDIO) - 1}"):
        sources.fetch("audio_url", url, job_dir)
    assert _files(job_dir) == []


def test_empty_s3_object_is_empty_audio(job_dir: Path, local_s3: LocalS3) -> None:
    url = local_s3.put("speech/empty.wav", b"")
    with pytest.raises(EmptyAudioError):
        sources.fetch("audio_url", url, job_dir)
    assert _files(job_dir) == []


@pytest.mark.parametrize("missing", ["S3_ACCESS_KEY", "S3_SECRET_KEY"])
def test_s3_uri_without_credentials_is_access_denied(
    job_dir: Path, local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setattr(config, missing, None)
    with pytest.raises(SourceAccessDeniedError, match="S3_ACCESS_KEY/S3_SECRET_KEY are not configured"):
        sources.fetch("audio_url", local_s3.put("speech/clip.wav", AUDIO), job_dir)
    assert _files(job_dir) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:/parakeet-audio/key.wav", "not of the form s3://bucket/key"),
        ("s3:parakeet-audio/key.wav", "not of the form s3://bucket/key"),
        ("s3://", "names no bucket"),
        ("s3://parakeet-audio", "names no object key"),
        ("s3://parakeet-audio/", "names no object key"),
        ("s3://a/key.wav", "bucket 'a' is not a valid S3 bucket name"),
        ("s3://-bucket/key.wav", "is not a valid S3 bucket name"),
        ("s3://bucket@evil.test/key.wav", "is not a valid S3 bucket name"),
        ("s3://bucket:9000/key.wav", "is not a valid S3 bucket name"),
        ("s3://parakeet-audio/" + "k" * 1025, "longer than 1024 bytes"),
    ],
)
def test_malformed_s3_uri_is_invalid_input(
    job_dir: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setattr(config, "S3_BUCKET", None)
    with pytest.raises(InvalidInputError, match=message):
        sources.fetch("audio_url", url, job_dir)
    assert _files(job_dir) == []


def test_s3_retries_a_server_error_once(job_dir: Path, flaky_s3: Callable[..., FlakyS3Server]) -> None:
    server = flaky_s3(failures=1)
    assert sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir).read_bytes() == AUDIO
    assert server.requests == ["/flaky/speech.wav", "/flaky/speech.wav"]


def test_s3_gives_up_after_one_retry(job_dir: Path, flaky_s3: Callable[..., FlakyS3Server]) -> None:
    server = flaky_s3(failures=100)
    with pytest.raises(FetchError, match="InternalError") as caught:
        sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir)
    assert type(caught.value) is FetchError
    assert len(server.requests) == 2
    assert _files(job_dir) == []


def test_s3_stream_without_length_is_capped_while_reading(
    job_dir: Path, flaky_s3: Callable[..., FlakyS3Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", 2500)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 1000)
    flaky_s3(mode="chunked")
    with pytest.raises(DownloadTooLargeError, match="larger than the limit of 2500 bytes"):
        sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir)
    assert _files(job_dir) == []


def test_s3_transfer_is_cut_at_the_deadline(
    job_dir: Path, flaky_s3: Callable[..., FlakyS3Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 1000)
    flaky_s3(mode="drip")
    with pytest.raises(FetchTimeoutError, match="did not finish within 0.5 s"):
        sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir)
    assert _files(job_dir) == []


def test_s3_read_stalling_past_the_read_timeout_is_a_timeout(
    job_dir: Path, flaky_s3: Callable[..., FlakyS3Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "S3_READ_TIMEOUT_SECONDS", 0.3)
    server = flaky_s3(mode="stall")
    with pytest.raises(FetchTimeoutError, match="S3 did not answer in time"):
        sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir)
    # The server sends the whole body after 2 s, so the error itself shows the read timeout cut it.
    # The body is streamed: a read that times out is not retried behind the caller's back.
    assert server.requests == ["/flaky/speech.wav"]
    assert _files(job_dir) == []


# --- http(s) origin: pinning, statuses, redirects ------------------------------------------------


def test_connection_goes_to_the_checked_address_without_a_second_lookup(
    job_dir: Path, origin: OriginServer, fake_dns: FakeDns
) -> None:
    url = f"http://audio.test:{origin.port}/audio.wav"
    # A rebinding DNS server answers the metadata address to any later lookup.
    fake_dns.rebind["audio.test"] = ["169.254.169.254"]
    path = sources.fetch("audio_url", url, job_dir)
    assert path.read_bytes() == AUDIO
    assert fake_dns.lookups == ["audio.test"]
    assert origin.requests == [{"path": "/audio.wav", "host": f"audio.test:{origin.port}"}]


def test_next_checked_address_is_tried_when_one_refuses(
    job_dir: Path, origin: OriginServer, fake_dns: FakeDns
) -> None:
    # Nothing listens on 127.0.0.2 at the origin's port: connection refused, then the second address.
    fake_dns.names["audio.test"] = ["127.0.0.2", "127.0.0.1"]
    assert (
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/audio.wav", job_dir).read_bytes()
        == AUDIO
    )
    assert len(origin.requests) == 1


def test_ipv6_literal_host_is_fetched_with_a_bracketed_host_header(job_dir: Path, local_urls: None) -> None:
    try:
        server = OriginServer("::1")
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = sources.fetch("audio_url", f"http://[::1]:{server.port}/audio.wav", job_dir)
    finally:
        server.shutdown()
        server.server_close()
    assert path.read_bytes() == AUDIO
    assert server.requests == [{"path": "/audio.wav", "host": f"[::1]:{server.port}"}]


def test_refused_connection_is_a_fetch_error(job_dir: Path, fake_dns: FakeDns, local_urls: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    fake_dns.names["audio.test"] = ["127.0.0.1"]
    with pytest.raises(FetchError, match=f"could not connect to audio.test port {free_port}"):
        sources.fetch("audio_url", f"http://audio.test:{free_port}/audio.wav", job_dir)
    assert _files(job_dir) == []


def test_unknown_host_is_a_fetch_error(job_dir: Path, local_urls: None) -> None:
    with pytest.raises(FetchError, match="could not resolve host 'unknown.test'"):
        sources.fetch("audio_url", "http://unknown.test/audio.wav", job_dir)


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (404, SourceNotFoundError, "HTTP 404 \\(not found\\)"),
        (410, SourceNotFoundError, "HTTP 410 \\(not found\\)"),
        (401, SourceAccessDeniedError, "HTTP 401 \\(access denied\\)"),
        (403, SourceAccessDeniedError, "HTTP 403 \\(access denied\\)"),
        (500, FetchError, "HTTP 500 from audio.test"),
        (418, FetchError, "HTTP 418 from audio.test"),
        (304, FetchError, "HTTP 304 from audio.test"),
    ],
)
def test_http_status_maps_to_error_without_the_query(
    job_dir: Path,
    origin: OriginServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
    error: type[Exception],
    message: str,
) -> None:
    caplog.set_level("DEBUG", logger="utils")
    with pytest.raises(error, match=message) as caught:
        sources.fetch(
            "audio_url", f"http://audio.test:{origin.port}/status/{status}?X-Amz-Signature={SECRET}", job_dir
        )
    assert type(caught.value) is error
    assert SECRET not in str(caught.value)
    ours = _our_log(caplog)
    assert f"/status/{status}" in ours
    assert SECRET not in ours
    assert _files(job_dir) == []


def test_redirects_up_to_the_limit_are_followed(job_dir: Path, origin: OriginServer) -> None:
    limit = config.MAX_REDIRECTS
    path = sources.fetch("audio_url", f"http://audio.test:{origin.port}/redirect/{limit}", job_dir)
    assert path.read_bytes() == AUDIO
    assert len(origin.requests) == limit + 1


def test_redirect_chain_over_the_limit_is_a_fetch_error(job_dir: Path, origin: OriginServer) -> None:
    limit = config.MAX_REDIRECTS
    with pytest.raises(FetchError, match=f"redirected more than {limit} times"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/redirect/{limit + 1}", job_dir)
    assert len(origin.requests) == limit + 1
    assert _files(job_dir) == []


def test_relative_redirect_is_resolved_against_the_current_url(job_dir: Path, origin: OriginServer) -> None:
    path = sources.fetch("audio_url", f"http://audio.test:{origin.port}/to?location=/audio.wav", job_dir)
    assert path.read_bytes() == AUDIO
    assert [request["path"] for request in origin.requests] == ["/to?location=/audio.wav", "/audio.wav"]


def test_redirect_to_a_forbidden_address_is_refused_before_connecting(
    job_dir: Path, origin: OriginServer, fake_dns: FakeDns
) -> None:
    # Link-local stays refused even with ALLOW_PRIVATE_ADDRESSES; loopback_only would fail a connection.
    fake_dns.names["evil.test"] = ["169.254.169.254"]
    location = quote("http://evil.test/latest/meta-data/iam/security-credentials/")
    with pytest.raises(
        UrlRejectedError, match=r"'evil.test' resolves to a non-public address \(link-local\)"
    ):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/to?location={location}", job_dir)
    assert fake_dns.lookups == ["audio.test", "evil.test"]
    assert len(origin.requests) == 1
    assert _files(job_dir) == []


def test_redirect_to_a_host_outside_the_allowlist_is_refused(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", ("audio.test",))
    location = quote(f"http://127.0.0.1:{origin.port}/audio.wav")
    with pytest.raises(UrlRejectedError, match="'127.0.0.1' is not in this worker's host allowlist"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/to?location={location}", job_dir)
    assert len(origin.requests) == 1


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("s3://parakeet-audio/speech/clip.wav", "scheme 's3' is not allowed"),
        ("ftp://audio.test/a", "scheme 'ftp' is not allowed"),
        ("http://[::1/a.wav", "redirected to an invalid URL"),
    ],
)
def test_redirect_to_another_scheme_or_an_invalid_url_is_refused(
    job_dir: Path, origin: OriginServer, location: str, message: str
) -> None:
    # s3:// in particular: a redirect must never make the worker use its own S3 credentials.
    with pytest.raises(UrlRejectedError, match=message):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/to?location={quote(location)}", job_dir)
    assert len(origin.requests) == 1


def test_redirect_without_location_is_a_fetch_error(job_dir: Path, origin: OriginServer) -> None:
    with pytest.raises(FetchError, match="HTTP 302 without a Location"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/no-location", job_dir)


# --- http origin: size and time limits -----------------------------------------------------------


def test_declared_length_over_the_cap_is_refused_before_reading(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_TIMEOUT_SECONDS", 10)
    started = time.monotonic()
    with pytest.raises(DownloadTooLargeError, match="1000000000000 bytes"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/huge-declared", job_dir)
    # The server sends no body for 10 s: waiting for any of it would show here.
    assert time.monotonic() - started < 5
    assert _files(job_dir) == []


@pytest.mark.parametrize("route", ["chunked", "close-delimited"])
def test_body_without_length_is_capped_while_streaming(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", 2500)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 1000)
    with pytest.raises(DownloadTooLargeError, match="larger than the limit of 2500 bytes"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/{route}", job_dir)
    assert _files(job_dir) == []


def test_lying_content_length_gets_only_the_declared_bytes(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Says 10 bytes, sends 5000 (over the 1000-byte cap): nothing past the declared length is read.
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", 1000)
    path = sources.fetch("audio_url", f"http://audio.test:{origin.port}/lying-length", job_dir)
    assert path.read_bytes() == b"y" * 10


def test_body_shorter_than_declared_is_a_fetch_error(job_dir: Path, origin: OriginServer) -> None:
    with pytest.raises(FetchError, match="broke off during the download"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/short-body", job_dir)
    assert _files(job_dir) == []


def test_empty_body_is_empty_audio(job_dir: Path, origin: OriginServer) -> None:
    with pytest.raises(EmptyAudioError, match="empty body"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/empty", job_dir)
    assert _files(job_dir) == []


@pytest.mark.parametrize(
    ("route", "deadline", "latest"),
    [
        ("drip", 1.0, 5.0),  # a byte every 0.2 s: 20 s in all
        ("stall", 3.0, 4.5),  # would end near 5.6 s if a read could outlive the deadline
    ],
)
def test_slow_body_is_cut_at_the_deadline(
    job_dir: Path,
    origin: OriginServer,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
    deadline: float,
    latest: float,
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_TIMEOUT_SECONDS", deadline)
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError, match=f"did not finish within {deadline:g} s"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/{route}", job_dir)
    elapsed = time.monotonic() - started
    assert deadline - 0.1 < elapsed < latest
    assert _files(job_dir) == []


# --- https origin ----------------------------------------------------------------------------------


def test_https_verifies_the_host_name_while_connecting_to_the_pinned_address(
    job_dir: Path, tls_origin: OriginServer
) -> None:
    path = sources.fetch(
        "audio_url", f"https://audio.test:{tls_origin.port}/audio.wav?X-Amz-Signature={SECRET}", job_dir
    )
    assert path.read_bytes() == AUDIO
    assert path.suffix == ".wav"
    assert tls_origin.server_names == ["audio.test"]
    assert tls_origin.requests == [
        {"path": f"/audio.wav?X-Amz-Signature={SECRET}", "host": f"audio.test:{tls_origin.port}"}
    ]


def test_https_certificate_for_another_name_is_refused(job_dir: Path, tls_origin: OriginServer) -> None:
    with pytest.raises(FetchError, match="TLS connection to other.test failed"):
        sources.fetch("audio_url", f"https://other.test:{tls_origin.port}/audio.wav", job_dir)
    assert tls_origin.requests == []
    assert _files(job_dir) == []


def test_https_certificate_from_an_untrusted_ca_is_refused(
    job_dir: Path,
    tls_origin: OriginServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    empty_bundle = tmp_path_factory.mktemp("no-ca") / "empty.pem"
    empty_bundle.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty_bundle.parent))
    with pytest.raises(FetchError, match="TLS connection to audio.test failed"):
        sources.fetch("audio_url", f"https://audio.test:{tls_origin.port}/audio.wav", job_dir)
    assert tls_origin.requests == []


def test_https_redirect_to_plain_http_is_refused(job_dir: Path, tls_origin: OriginServer) -> None:
    location = quote(f"http://audio.test:{tls_origin.port}/audio.wav")
    with pytest.raises(UrlRejectedError, match="scheme 'http' is not allowed"):
        sources.fetch("audio_url", f"https://audio.test:{tls_origin.port}/to?location={location}", job_dir)
    assert len(tls_origin.requests) == 1
