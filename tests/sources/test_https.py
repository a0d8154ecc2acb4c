"""https (and, for local tests, http) downloads and uploads (`utils.sources.https`): presigned S3 URLs
against moto, and local origins that misbehave on purpose: pinned addresses, statuses, redirects, size
and time limits, TLS checks, and the exact PUT request a presigned URL signs."""

import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import config
from tests.support.fake_dns import FakeDns
from tests.support.origins import (
    AUDIO,
    SECRET,
    UPLOAD_BODY,
    OriginServer,
    PutTarget,
    Received,
    capture_worker_logs,
    files_in,
    worker_log,
)
from tests.support.s3_server import ACCESS_KEY, REGION, SECRET_KEY, LocalS3, _test_client, presigned_put_url
from utils import sources
from utils.errors import (
    DownloadTooLargeError,
    EmptyAudioError,
    FetchError,
    FetchTimeoutError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    UrlRejectedError,
)

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- fixtures: job directory, DNS ----------------------------------------------------------------


def _our_log(caplog: pytest.LogCaptureFixture) -> str:
    """Returns the worker's own log lines (urllib3's and botocore's DEBUG logs quote whole requests)."""
    return "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("utils."))


# --- presigned URLs and s3:// against moto ---------------------------------------------------------


def test_presigned_url_downloads_the_object(job_dir: Path, local_s3: LocalS3) -> None:
    local_s3.put("speech/clip.wav", AUDIO)
    path = sources.fetch("audio_url", local_s3.presigned_get("speech/clip.wav"), job_dir)
    assert files_in(job_dir) == [path]
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
    assert files_in(job_dir) == []


def test_presigned_url_denied_by_the_bucket_is_access_denied(
    job_dir: Path, local_s3: LocalS3, denied_bucket: str
) -> None:
    with pytest.raises(SourceAccessDeniedError, match="HTTP 403"):
        sources.fetch("audio_url", local_s3.presigned_get("secret.wav", bucket=denied_bucket), job_dir)
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


@pytest.mark.parametrize("route", ["chunked", "close-delimited"])
def test_body_without_length_is_capped_while_streaming(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", 2500)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 1000)
    with pytest.raises(DownloadTooLargeError, match="larger than the limit of 2500 bytes"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/{route}", job_dir)
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


def test_empty_body_is_empty_audio(job_dir: Path, origin: OriginServer) -> None:
    with pytest.raises(EmptyAudioError, match="empty body"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/empty", job_dir)
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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


pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- a local PUT target -----------------------------------------------------------------------------


def _presigned_signature_of(request: Received) -> str:
    """Recomputes the SigV4 query signature from the request as received (what real S3 checks)."""
    query = urlsplit(request.path).query
    params = parse_qs(query)
    signed_headers = params["X-Amz-SignedHeaders"][0].split(";")
    unsigned_query = "&".join(pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature="))
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://{request.headers['host']}{urlsplit(request.path).path}?{unsigned_query}",
        headers={name: request.headers[name] for name in signed_headers},
    )
    aws_request.context["timestamp"] = params["X-Amz-Date"][0]
    auth = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
    return auth.signature(auth.string_to_sign(aws_request, auth.canonical_request(aws_request)), aws_request)


# --- presigned PUT against moto ----------------------------------------------------------------------


def test_presigned_put_stores_the_exact_bytes_and_content_type(
    local_s3: LocalS3, caplog: pytest.LogCaptureFixture
) -> None:
    capture_worker_logs(caplog)
    url = local_s3.presigned_put("results/job-1.json")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    sources.upload(url, UPLOAD_BODY, "application/json")
    assert local_s3.stored("results/job-1.json") == (UPLOAD_BODY, "application/json")
    log = worker_log(caplog)
    assert f"uploaded {len(UPLOAD_BODY)} bytes to {urlsplit(url).scheme}://{urlsplit(url).netloc}/" in log
    assert signature not in log
    assert "X-Amz" not in log


def test_presigned_put_sends_exactly_the_signed_request(put_target: PutTarget) -> None:
    # moto accepts any signature, so the signature is checked here as S3 would check it.
    signer = _test_client(f"http://uploads.test:{put_target.port}")
    url = presigned_put_url(signer, "results-bucket", "job 1/out.json")
    sources.upload(url, UPLOAD_BODY, "application/json")
    [request] = put_target.received
    assert request.body == UPLOAD_BODY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(UPLOAD_BODY))
    assert "transfer-encoding" not in request.headers
    assert _presigned_signature_of(request) == parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    # The check itself can fail: another Content-Type gives another signature.
    request.headers["content-type"] = "application/json; charset=utf-8"
    assert _presigned_signature_of(request) != parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def test_presigned_put_denied_by_the_bucket_is_access_denied(
    local_s3: LocalS3, denied_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    capture_worker_logs(caplog)
    url = local_s3.presigned_put(bucket=denied_bucket, key="out.json")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    with pytest.raises(
        SourceAccessDeniedError, match=r"^output_url returned HTTP 403 \(access denied\)"
    ) as caught:
        sources.upload(url, UPLOAD_BODY, "application/json")
    assert signature not in str(caught.value)
    assert "X-Amz" not in str(caught.value)
    log = worker_log(caplog)
    assert f"/{denied_bucket}/out.json" in log
    assert signature not in log


# --- the PUT target: redirects, statuses, slow servers -------------------------------------------


def test_redirect_is_not_followed(put_target: PutTarget) -> None:
    with pytest.raises(
        FetchError, match=r"^output_url returned HTTP 307 \(a redirect\).*do not follow"
    ) as caught:
        sources.upload(
            f"http://uploads.test:{put_target.port}/redirect?X-Amz-Signature={SECRET}",
            UPLOAD_BODY,
            "application/json",
        )
    assert type(caught.value) is FetchError
    assert [request.path for request in put_target.received] == [f"/redirect?X-Amz-Signature={SECRET}"]


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (401, SourceAccessDeniedError, r"HTTP 401 \(access denied\)"),
        (403, SourceAccessDeniedError, r"HTTP 403 \(access denied\)"),
        (404, FetchError, "HTTP 404 from uploads.test"),
        (500, FetchError, "HTTP 500 from uploads.test"),
        (304, FetchError, "HTTP 304 from uploads.test"),
    ],
)
def test_error_status_maps_to_error_without_the_query(
    put_target: PutTarget,
    caplog: pytest.LogCaptureFixture,
    status: int,
    error: type[Exception],
    message: str,
) -> None:
    capture_worker_logs(caplog)
    with pytest.raises(error, match=f"^output_url returned {message}") as caught:
        sources.upload(
            f"http://uploads.test:{put_target.port}/status/{status}?X-Amz-Signature={SECRET}",
            UPLOAD_BODY,
            "application/json",
        )
    assert type(caught.value) is error
    assert SECRET not in str(caught.value)
    log = worker_log(caplog)
    assert f"/status/{status}" in log
    assert SECRET not in log


def test_body_is_sent_in_chunks_so_a_slow_reader_is_not_cut_by_the_connect_timeout(
    put_target: PutTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server needs over a second for 16 MiB; one send of the whole body would have to finish
    # within the connect timeout (0.5 s).
    monkeypatch.setattr(config, "DOWNLOAD_CONNECT_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 256 * 1024)
    body = bytes(range(256)) * (16 * 4096)
    started = time.monotonic()
    sources.upload(f"http://uploads.test:{put_target.port}/slow", body, "application/json")
    assert time.monotonic() - started > 0.5
    [request] = put_target.received
    assert request.body == body


def test_server_that_stops_reading_is_cut_after_the_connect_timeout(
    put_target: PutTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_CONNECT_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError, match=r"^output_url: uploads.test stopped taking the upload"):
        sources.upload(
            f"http://uploads.test:{put_target.port}/stall", bytes(32 * 1024 * 1024), "application/json"
        )
    # The server would hold the connection for 10 s.
    assert time.monotonic() - started < 5


def test_upload_is_cut_at_the_deadline(put_target: PutTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 64 * 1024)
    started = time.monotonic()
    with pytest.raises(
        FetchTimeoutError, match=r"^output_url: the upload to uploads.test did not finish within 1 s"
    ):
        sources.upload(
            f"http://uploads.test:{put_target.port}/trickle", bytes(32 * 1024 * 1024), "application/json"
        )
    # At the server's pace the body would take about 50 s.
    assert 0.9 < time.monotonic() - started < 5
