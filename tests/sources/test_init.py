"""The one scheme dispatch (`utils.sources`: `fetch`, `upload`, `check_output_url`): unsupported and
forbidden URLs are refused before any connection, and both output_url entry points judge alike.

Name resolution is faked for every test (`fake_dns`); `loopback_only` fails any test that tries to
open a connection to a non-loopback address."""

from pathlib import Path
from typing import Any

import pytest

import config
from tests.support.fake_dns import FakeDns
from tests.support.origins import (
    OUTPUT_URL_CHECKS,
    SECRET,
    OriginServer,
    PutTarget,
    capture_worker_logs,
    files_in,
    worker_log,
)
from tests.support.s3_server import LocalS3
from utils import sources
from utils.errors import (
    FetchError,
    InvalidInputError,
    UrlRejectedError,
)

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


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
    assert files_in(job_dir) == []


def test_private_addresses_are_refused_by_default(
    job_dir: Path, origin: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    with pytest.raises(UrlRejectedError, match=r"non-public address \(loopback\)"):
        sources.fetch("audio_url", f"http://audio.test:{origin.port}/audio.wav", job_dir)
    assert origin.requests == []
    assert files_in(job_dir) == []


pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


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
@pytest.mark.parametrize("check", OUTPUT_URL_CHECKS.values(), ids=OUTPUT_URL_CHECKS.keys())
@pytest.mark.parametrize(("url", "message"), UNSUPPORTED)
def test_unsupported_or_malformed_url_is_rejected_without_any_lookup(
    fake_dns: FakeDns, check: Any, url: str, message: str
) -> None:
    with pytest.raises(UrlRejectedError, match=f"^output_url .*{message}"):
        check(url)
    assert fake_dns.lookups == []


@pytest.mark.parametrize("check", OUTPUT_URL_CHECKS.values(), ids=OUTPUT_URL_CHECKS.keys())
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
def test_malformed_s3_output_uri_is_invalid_input(
    monkeypatch: pytest.MonkeyPatch, check: Any, url: str, message: str
) -> None:
    monkeypatch.setattr(config, "S3_BUCKET", None)
    with pytest.raises(InvalidInputError, match=message):
        check(url)


@pytest.mark.usefixtures("production_policy")
@pytest.mark.parametrize("check", OUTPUT_URL_CHECKS.values(), ids=OUTPUT_URL_CHECKS.keys())
def test_forbidden_address_is_refused_before_connecting(
    fake_dns: FakeDns, caplog: pytest.LogCaptureFixture, check: Any
) -> None:
    capture_worker_logs(caplog)
    # Link-local: the cloud metadata service. loopback_only would fail any connection attempt.
    fake_dns.names["evil.test"] = ["169.254.169.254"]
    with pytest.raises(
        UrlRejectedError,
        match=r"^output_url host 'evil.test' resolves to a non-public address \(link-local\)",
    ) as caught:
        check(f"https://evil.test/latest/meta-data/?X-Amz-Signature={SECRET}")
    assert "169.254.169.254" not in str(caught.value)
    assert fake_dns.lookups == ["evil.test"]
    log = worker_log(caplog)
    assert "https://evil.test/latest/meta-data/" in log
    assert SECRET not in log


@pytest.mark.parametrize("check", OUTPUT_URL_CHECKS.values(), ids=OUTPUT_URL_CHECKS.keys())
def test_loopback_target_is_refused_in_production_without_a_request(
    put_target: PutTarget, monkeypatch: pytest.MonkeyPatch, check: Any
) -> None:
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", False)
    with pytest.raises(UrlRejectedError, match=r"^output_url host 'uploads.test' .*\(loopback\)"):
        check(f"http://uploads.test:{put_target.port}/ok")
    assert put_target.received == []


@pytest.mark.usefixtures("production_policy")
@pytest.mark.parametrize("check", OUTPUT_URL_CHECKS.values(), ids=OUTPUT_URL_CHECKS.keys())
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


def test_check_accepts_a_local_http_url_when_allowed(put_target: PutTarget) -> None:
    sources.check_output_url(f"http://uploads.test:{put_target.port}/ok?X-Amz-Signature={SECRET}")
    assert put_target.received == []
