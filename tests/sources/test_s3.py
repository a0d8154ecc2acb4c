"""s3:// URIs read and written with the worker's own credentials (`utils.sources.s3`), against moto's S3
server and a tiny flaky S3 endpoint: keys, default bucket, missing objects, denials, retries, caps and
timeouts."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import config
from tests.support.origins import AUDIO, OUTPUT_URL_CHECKS, UPLOAD_BODY, FlakyS3Server, files_in
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
)

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- fixtures: job directory, DNS ----------------------------------------------------------------


def test_s3_uri_is_read_with_the_worker_credentials(job_dir: Path, local_s3: LocalS3) -> None:
    url = local_s3.put("speech/clip.flac", AUDIO)
    path = sources.fetch("audio_url", url, job_dir)
    assert files_in(job_dir) == [path]
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
    assert files_in(job_dir) == []


def test_s3_uri_denied_by_the_bucket_is_access_denied(
    job_dir: Path, local_s3: LocalS3, denied_bucket: str
) -> None:
    with pytest.raises(SourceAccessDeniedError, match=f"s3://{denied_bucket}/secret.wav was denied"):
        sources.fetch("audio_url", f"s3://{denied_bucket}/secret.wav", job_dir)
    assert files_in(job_dir) == []


def test_s3_object_over_the_cap_is_refused_by_its_length(
    job_dir: Path, local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", len(AUDIO) - 1)
    url = local_s3.put("speech/big.wav", AUDIO)
    with pytest.raises(DownloadTooLargeError, match=f"{len(AUDIO)} bytes; the limit is {len(AUDIO) - 1}"):
        sources.fetch("audio_url", url, job_dir)
    assert files_in(job_dir) == []


def test_empty_s3_object_is_empty_audio(job_dir: Path, local_s3: LocalS3) -> None:
    url = local_s3.put("speech/empty.wav", b"")
    with pytest.raises(EmptyAudioError):
        sources.fetch("audio_url", url, job_dir)
    assert files_in(job_dir) == []


@pytest.mark.parametrize("missing", ["S3_ACCESS_KEY", "S3_SECRET_KEY"])
def test_s3_uri_without_credentials_is_access_denied(
    job_dir: Path, local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setattr(config, missing, None)
    with pytest.raises(SourceAccessDeniedError, match="S3_ACCESS_KEY/S3_SECRET_KEY are not configured"):
        sources.fetch("audio_url", local_s3.put("speech/clip.wav", AUDIO), job_dir)
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


def test_s3_stream_without_length_is_capped_while_reading(
    job_dir: Path, flaky_s3: Callable[..., FlakyS3Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", 2500)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 1000)
    flaky_s3(mode="chunked")
    with pytest.raises(DownloadTooLargeError, match="larger than the limit of 2500 bytes"):
        sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir)
    assert files_in(job_dir) == []


def test_s3_transfer_is_cut_at_the_deadline(
    job_dir: Path, flaky_s3: Callable[..., FlakyS3Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(config, "DOWNLOAD_CHUNK_BYTES", 1000)
    flaky_s3(mode="drip")
    with pytest.raises(FetchTimeoutError, match="did not finish within 0.5 s"):
        sources.fetch("audio_url", "s3://flaky/speech.wav", job_dir)
    assert files_in(job_dir) == []


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
    assert files_in(job_dir) == []


pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")


# --- s3:// with the worker's credentials ----------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["s3://parakeet-audio/results/odd name?v=1.json", "s3:///results/default.json"]
)
def test_s3_uri_is_written_with_the_worker_credentials(local_s3: LocalS3, url: str) -> None:
    sources.upload(url, UPLOAD_BODY, "application/json")
    key = url.partition("://")[2].partition("/")[2]
    assert local_s3.stored(key) == (UPLOAD_BODY, "application/json")


def test_writing_an_s3_uri_denied_by_the_bucket_is_access_denied(
    local_s3: LocalS3, denied_bucket: str
) -> None:
    with pytest.raises(
        SourceAccessDeniedError, match=f"^output_url: access to s3://{denied_bucket}/out.json was denied"
    ):
        sources.upload(f"s3://{denied_bucket}/out.json", UPLOAD_BODY, "application/json")


def test_s3_uri_of_a_missing_bucket_is_not_found(local_s3: LocalS3) -> None:
    with pytest.raises(
        SourceNotFoundError,
        match=r"^output_url: s3://no-such-output-bucket/a.json was not found \(NoSuchBucket\)",
    ):
        sources.upload("s3://no-such-output-bucket/a.json", UPLOAD_BODY, "application/json")


@pytest.mark.parametrize("check", OUTPUT_URL_CHECKS.values(), ids=OUTPUT_URL_CHECKS.keys())
def test_writing_an_s3_uri_without_credentials_is_access_denied(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch, check: Any
) -> None:
    monkeypatch.setattr(config, "S3_SECRET_KEY", None)
    with pytest.raises(
        SourceAccessDeniedError, match="^output_url is an s3:// URI but this worker has no S3"
    ):
        check(f"s3://{local_s3.bucket}/out.json")
