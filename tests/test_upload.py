"""Result uploads to output_url (`utils.sources.upload`, `check_output_url`; `utils.output.delivery`).

- moto's S3 server (tests/s3_server.py) with real presigned PUT URLs and s3:// writes;
- a stdlib http.server PUT target for what moto cannot show: the exact request the worker sends
  (checked against the presigned signature, which moto does not verify), redirects, error statuses,
  and servers that read the body slowly or not at all.

Name resolution is faked for every test (`fake_dns`): names resolve only to what a test installs, IP
literals resolve to themselves. `loopback_only` fails any test that tries to open a connection to a
non-loopback address.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import config
from tests.support.fake_dns import FakeDns
from tests.support.s3_server import ACCESS_KEY, REGION, SECRET_KEY, LocalS3, _test_client
from utils import sources
from utils.errors import (
    FetchError,
    FetchTimeoutError,
    InvalidInputError,
    ResultTooLargeError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    UrlRejectedError,
)
from utils.output import delivery

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")

BODY = json.dumps({"success": True, "text": "grüße, 12 34"}, ensure_ascii=False).encode()
SECRET = "S3CR3T-SIGNATURE-0123456789"
# The two entry points that judge an output_url; the same bad URL must fail both alike.
CHECKS = {
    "upload": lambda url: sources.upload(url, BODY, "application/json"),
    "check_output_url": sources.check_output_url,
}
# The test servers' own request logs quote whole URLs; everything else in the process is the worker's.
_SERVER_LOGGERS = ("werkzeug", "moto")


def _worker_log(caplog: pytest.LogCaptureFixture) -> str:
    """Returns the log lines of everything but the test servers."""
    return "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith(_SERVER_LOGGERS)
    )


def _capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Captures the worker's own DEBUG lines and every library's INFO lines."""
    caplog.set_level("INFO")
    caplog.set_level("DEBUG", logger="utils")


# --- fixtures: DNS, policy ------------------------------------------------------------------------


def _presigned_put(client: Any, bucket: str, key: str, expires_in: int = 600) -> str:
    """Returns a real presigned PUT URL that signs Content-Type: application/json."""
    return client.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": "application/json"},
        ExpiresIn=expires_in,
    )


def _stored(local_s3: LocalS3, key: str, bucket: str | None = None) -> tuple[bytes, str]:
    """Returns an object's bytes and Content-Type from the moto server."""
    response = local_s3.client.get_object(Bucket=bucket or local_s3.bucket, Key=key)
    return response["Body"].read(), response["ContentType"]


# --- a local PUT target -----------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the PUT target saw it (header names lowercased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _PutHandler(BaseHTTPRequestHandler):
    """Answers PUTs by path: /ok, /status/<code>, /redirect, /slow, /stall."""

    protocol_version = "HTTP/1.1"
    server: "_PutServer"

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""

    def do_PUT(self) -> None:
        """Records the request, reads the body as the route says, answers."""
        route = urlsplit(self.path).path.strip("/").split("/")[0]
        length = int(self.headers.get("Content-Length", "0"))
        try:
            if route == "stall":
                # Reads nothing: the worker's sends block once the socket buffers are full.
                body = b""
                self.server.release.wait(10)
            elif route == "slow":
                # 256 KiB every 25 ms (about 10 MiB/s), never pausing for long.
                received = bytearray()
                while chunk := self.rfile.read(min(256 * 1024, length - len(received))):
                    received += chunk
                    time.sleep(0.025)
                body = bytes(received)
            elif route == "trickle":
                # 64 KiB every 100 ms: steady, but far too slow for the body.
                while not self.server.release.is_set() and (chunk := self.rfile.read(min(64 * 1024, length))):
                    length -= len(chunk)
                    time.sleep(0.1)
                body = b""
            else:
                body = self.rfile.read(length)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        self.server.received.append(
            Received("PUT", self.path, {name.lower(): value for name, value in self.headers.items()}, body)
        )
        if route == "redirect":
            self._answer(307, {"Location": "/ok"})
        elif route == "status":
            self._answer(int(self.path.rsplit("/", 1)[1].partition("?")[0]))
        else:
            self._answer(200)

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Sends an empty response."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _PutServer(ThreadingHTTPServer):
    """The PUT target, with what it received; a small receive buffer so that not reading shows."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PutHandler, bind_and_activate=False)
        # Set before listen, so accepted sockets inherit it (and the kernel does not grow it).
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.server_bind()
        self.server_activate()
        self.received: list[Received] = []
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stays quiet about clients hanging up (tests abort uploads on purpose)."""

    @property
    def port(self) -> int:
        """The port the target listens on."""
        return self.server_address[1]


@pytest.fixture
def put_target(fake_dns: FakeDns, local_urls: None) -> Iterator[_PutServer]:
    """A PUT target reachable as http://uploads.test:<port>/ with http and loopback admitted."""
    server = _PutServer()
    # A short poll interval: shutdown() waits up to one interval, once per test.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake_dns.names["uploads.test"] = ["127.0.0.1"]
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


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
    _capture_logs(caplog)
    url = _presigned_put(local_s3.client, local_s3.bucket, "results/job-1.json")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    sources.upload(url, BODY, "application/json")
    assert _stored(local_s3, "results/job-1.json") == (BODY, "application/json")
    log = _worker_log(caplog)
    assert f"uploaded {len(BODY)} bytes to {urlsplit(url).scheme}://{urlsplit(url).netloc}/" in log
    assert signature not in log
    assert "X-Amz" not in log


def test_presigned_put_sends_exactly_the_signed_request(put_target: _PutServer) -> None:
    # moto accepts any signature, so the signature is checked here as S3 would check it.
    signer = _test_client(f"http://uploads.test:{put_target.port}")
    url = _presigned_put(signer, "results-bucket", "job 1/out.json")
    sources.upload(url, BODY, "application/json")
    [request] = put_target.received
    assert request.body == BODY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(BODY))
    assert "transfer-encoding" not in request.headers
    assert _presigned_signature_of(request) == parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    # The check itself can fail: another Content-Type gives another signature.
    request.headers["content-type"] = "application/json; charset=utf-8"
    assert _presigned_signature_of(request) != parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def test_presigned_put_denied_by_the_bucket_is_access_denied(
    local_s3: LocalS3, denied_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    _capture_logs(caplog)
    url = _presigned_put(local_s3.client, denied_bucket, "out.json")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    with pytest.raises(
        SourceAccessDeniedError, match=r"^output_url returned HTTP 403 \(access denied\)"
    ) as caught:
        sources.upload(url, BODY, "application/json")
    assert signature not in str(caught.value)
    assert "X-Amz" not in str(caught.value)
    log = _worker_log(caplog)
    assert f"/{denied_bucket}/out.json" in log
    assert signature not in log


# --- s3:// with the worker's credentials ----------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["s3://parakeet-audio/results/odd name?v=1.json", "s3:///results/default.json"]
)
def test_s3_uri_is_written_with_the_worker_credentials(local_s3: LocalS3, url: str) -> None:
    sources.upload(url, BODY, "application/json")
    key = url.partition("://")[2].partition("/")[2]
    assert _stored(local_s3, key) == (BODY, "application/json")


def test_s3_uri_denied_by_the_bucket_is_access_denied(local_s3: LocalS3, denied_bucket: str) -> None:
    with pytest.raises(
        SourceAccessDeniedError, match=f"^output_url: access to s3://{denied_bucket}/out.json was denied"
    ):
        sources.upload(f"s3://{denied_bucket}/out.json", BODY, "application/json")


def test_s3_uri_of_a_missing_bucket_is_not_found(local_s3: LocalS3) -> None:
    with pytest.raises(
        SourceNotFoundError,
        match=r"^output_url: s3://no-such-output-bucket/a.json was not found \(NoSuchBucket\)",
    ):
        sources.upload("s3://no-such-output-bucket/a.json", BODY, "application/json")


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_s3_uri_without_credentials_is_access_denied(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch, check: Any
) -> None:
    monkeypatch.setattr(config, "S3_SECRET_KEY", None)
    with pytest.raises(
        SourceAccessDeniedError, match="^output_url is an s3:// URI but this worker has no S3"
    ):
        check(f"s3://{local_s3.bucket}/out.json")


# --- the PUT target: redirects, statuses, slow servers -------------------------------------------


def test_redirect_is_not_followed(put_target: _PutServer) -> None:
    with pytest.raises(
        FetchError, match=r"^output_url returned HTTP 307 \(a redirect\).*do not follow"
    ) as caught:
        sources.upload(
            f"http://uploads.test:{put_target.port}/redirect?X-Amz-Signature={SECRET}",
            BODY,
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
    put_target: _PutServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
    error: type[Exception],
    message: str,
) -> None:
    _capture_logs(caplog)
    with pytest.raises(error, match=f"^output_url returned {message}") as caught:
        sources.upload(
            f"http://uploads.test:{put_target.port}/status/{status}?X-Amz-Signature={SECRET}",
            BODY,
            "application/json",
        )
    assert type(caught.value) is error
    assert SECRET not in str(caught.value)
    log = _worker_log(caplog)
    assert f"/status/{status}" in log
    assert SECRET not in log


def test_body_is_sent_in_chunks_so_a_slow_reader_is_not_cut_by_the_connect_timeout(
    put_target: _PutServer, monkeypatch: pytest.MonkeyPatch
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
    put_target: _PutServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_CONNECT_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError, match=r"^output_url: uploads.test stopped taking the upload"):
        sources.upload(
            f"http://uploads.test:{put_target.port}/stall", bytes(32 * 1024 * 1024), "application/json"
        )
    # The server would hold the connection for 10 s.
    assert time.monotonic() - started < 5


def test_upload_is_cut_at_the_deadline(put_target: _PutServer, monkeypatch: pytest.MonkeyPatch) -> None:
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


# --- refused before any connection ------------------------------------------------------------------


UNSUPPORTED = [
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("ftp://uploads.example.com/out.json", "scheme 'ftp' is not allowed"),
    ("gopher://uploads.example.com:70/_PUT", "scheme 'gopher' is not allowed"),
    ("data:application/json,{}", "scheme 'data' is not allowed"),
    ("http://uploads.example.com/out.json", "scheme 'http' is not allowed"),
    ("uploads.example.com/out.json", "has no scheme"),
    ("https://[::1/out.json", "is not a valid URL"),
    ("https://user:pw@uploads.example.com/out.json", "must not contain credentials"),
    ("https://uploads.example.com/out.json?a=1 b", "whitespace or control characters"),
    ("https://uploads.example.com:0/out.json", "invalid port"),
    ("https://127.1/out.json", "not a valid host name or IPv4 address"),
]


@pytest.mark.usefixtures("production_policy")
@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
@pytest.mark.parametrize(("url", "message"), UNSUPPORTED)
def test_unsupported_or_malformed_url_is_rejected_without_any_lookup(
    fake_dns: FakeDns, check: Any, url: str, message: str
) -> None:
    with pytest.raises(UrlRejectedError, match=f"^output_url .*{message}"):
        check(url)
    assert fake_dns.lookups == []


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:/bucket/out.json", "^output_url is not of the form s3://bucket/key"),
        ("s3://parakeet-audio/", "^output_url names no object key"),
        (
            "s3://bucket@evil.test/out.json",
            "^output_url bucket 'bucket@evil.test' is not a valid S3 bucket name",
        ),
        ("s3:///out.json", r"^output_url names no bucket \(s3:///key\) and S3_BUCKET is not configured"),
    ],
)
def test_malformed_s3_uri_is_invalid_input(
    monkeypatch: pytest.MonkeyPatch, check: Any, url: str, message: str
) -> None:
    monkeypatch.setattr(config, "S3_BUCKET", None)
    with pytest.raises(InvalidInputError, match=message):
        check(url)


@pytest.mark.usefixtures("production_policy")
@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_forbidden_address_is_refused_before_connecting(
    fake_dns: FakeDns, caplog: pytest.LogCaptureFixture, check: Any
) -> None:
    _capture_logs(caplog)
    # Link-local: the cloud metadata service. loopback_only would fail any connection attempt.
    fake_dns.names["evil.test"] = ["169.254.169.254"]
    with pytest.raises(
        UrlRejectedError,
        match=r"^output_url host 'evil.test' resolves to a non-public address \(link-local\)",
    ) as caught:
        check(f"https://evil.test/latest/meta-data/?X-Amz-Signature={SECRET}")
    assert "169.254.169.254" not in str(caught.value)
    assert fake_dns.lookups == ["evil.test"]
    log = _worker_log(caplog)
    assert "https://evil.test/latest/meta-data/" in log
    assert SECRET not in log


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_loopback_target_is_refused_in_production_without_a_request(
    put_target: _PutServer, monkeypatch: pytest.MonkeyPatch, check: Any
) -> None:
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    with pytest.raises(UrlRejectedError, match=r"^output_url host 'uploads.test' .*\(loopback\)"):
        check(f"http://uploads.test:{put_target.port}/ok")
    assert put_target.received == []


@pytest.mark.usefixtures("production_policy")
@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_host_outside_the_allowlist_is_refused_before_lookup(
    fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch, check: Any
) -> None:
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", (".s3.amazonaws.com",))
    with pytest.raises(
        UrlRejectedError, match="^output_url host 'uploads.example.com' is not in this worker's"
    ):
        check("https://uploads.example.com/out.json")
    assert fake_dns.lookups == []


@pytest.mark.usefixtures("production_policy")
def test_check_of_an_unresolvable_host_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="^output_url: could not resolve host 'nowhere.test'"):
        sources.check_output_url("https://nowhere.test/out.json")


# --- check_output_url accepts what upload accepts ---------------------------------------------------


@pytest.mark.usefixtures("production_policy")
def test_check_accepts_a_public_https_url_without_connecting(
    fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "URL_HOST_ALLOWLIST", (".s3.amazonaws.com",))
    fake_dns.names["results.s3.amazonaws.com"] = ["52.216.1.1"]
    # A connection to 52.216.1.1 would fail the test (loopback_only).
    sources.check_output_url(f"https://results.s3.amazonaws.com/out.json?X-Amz-Signature={SECRET}")
    assert fake_dns.lookups == ["results.s3.amazonaws.com"]


@pytest.mark.parametrize("url", ["s3://parakeet-audio/results/out.json", "s3:///results/out.json"])
def test_check_accepts_s3_uris_without_writing(local_s3: LocalS3, url: str) -> None:
    sources.check_output_url(url)
    assert local_s3.client.list_objects_v2(Bucket=local_s3.bucket, Prefix="results/out.json")["KeyCount"] == 0


def test_check_accepts_a_local_http_url_when_allowed(put_target: _PutServer) -> None:
    sources.check_output_url(f"http://uploads.test:{put_target.port}/ok?X-Amz-Signature={SECRET}")
    assert put_target.received == []


# --- delivery.fit_result end to end -----------------------------------------------------------------


def _big_result() -> dict[str, Any]:
    """A success result with a meta block, well over a few hundred bytes of JSON."""
    words = [{"word": str(n % 10), "start": n * 0.08, "end": n * 0.08 + 0.05} for n in range(40)]
    return {
        "success": True,
        "text": " ".join(word["word"] for word in words),
        "duration": 3.2,
        "timestamps": {"word": words},
        "meta": {"model": "parakeet-tdt-digits", "audio_seconds": 3.2},
    }


def test_result_within_the_limit_is_returned_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result()
    size = len(json.dumps(result, ensure_ascii=False).encode())
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", size)
    assert delivery.fit_result(result, None) is result
    assert delivery.fit_result(result, "ftp://never.used/out.json") is result


def test_result_over_the_limit_goes_to_the_presigned_url(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _big_result()
    body = json.dumps(result, ensure_ascii=False).encode()
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", len(body) - 1)
    url = _presigned_put(local_s3.client, local_s3.bucket, "results/big.json")
    summary = delivery.fit_result(result, url)
    assert summary == {
        "success": True,
        "output_url": url.partition("?")[0],
        "result_bytes": len(body),
        "meta": result["meta"],
    }
    assert "X-Amz" not in json.dumps(summary)
    stored, content_type = _stored(local_s3, "results/big.json")
    assert (stored, content_type) == (body, "application/json")
    assert json.loads(stored) == result


def test_result_over_the_limit_goes_to_an_s3_uri(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result()
    del result["meta"]
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", 100)
    summary = delivery.fit_result(result, f"s3://{local_s3.bucket}/results/big-s3.json")
    body = json.dumps(result, ensure_ascii=False).encode()
    assert summary == {
        "success": True,
        "output_url": f"s3://{local_s3.bucket}/results/big-s3.json",
        "result_bytes": len(body),
    }
    assert _stored(local_s3, "results/big-s3.json") == (body, "application/json")


def test_result_over_the_limit_without_output_url_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _big_result()
    size = len(json.dumps(result, ensure_ascii=False).encode())
    monkeypatch.setattr(config, "MAX_RESULT_BYTES", size - 1)
    with pytest.raises(ResultTooLargeError) as caught:
        delivery.fit_result(result, None)
    assert caught.value.error_type == "result_too_large"
    assert str(caught.value) == (
        f"the result is {size} bytes, over the {size - 1}-byte response limit; "
        "send output_url (a presigned PUT URL or s3://bucket/key) to receive it there"
    )
