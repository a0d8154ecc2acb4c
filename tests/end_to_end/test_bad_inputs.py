"""Every kind of bad input through the real handler: a clear error, the right code, nothing left behind."""

import base64
import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import config
import handler
from tests.support.media import crafted_wav, one_hertz_wav, speech
from tests.support.media import encode as encode_clip
from tests.support.s3_server import LocalS3
from utils.audio import helper_pool


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def ffmpeg_bytes(tmp_path: Path, name: str, *args: str) -> bytes:
    """Makes a small media file with ffmpeg's generators and returns its bytes."""
    path = tmp_path / name
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args, str(path)], check=True)
    return path.read_bytes()


def tone_mp3(tmp_path: Path, seconds: float = 2.0) -> bytes:
    return ffmpeg_bytes(tmp_path, "tone.mp3", "-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}")


def video_only(tmp_path: Path) -> bytes:
    return ffmpeg_bytes(
        tmp_path, "v.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=32x32:rate=5", "-pix_fmt", "yuv420p"
    )


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Each case: an id, a function (tmp_path, s3) -> job input, the expected error_type, and a phrase the
# message must contain so a client knows what to fix.
Case = tuple[str, Callable[[Path, LocalS3], Any], str, str]
CASES: list[Case] = [
    ("input-null", lambda t, s: None, "invalid_input", "input must be a JSON object"),
    ("input-list", lambda t, s: [{"audio_url": "s3://b/k"}], "invalid_input", "got array"),
    ("input-empty", lambda t, s: {}, "invalid_input", "needs one of audio_base64 or audio_url"),
    ("two-sources", lambda t, s: {"audio_base64": "QQ==", "audio_url": "s3://b/k"}, "invalid_input", "both"),
    ("unknown-field", lambda t, s: {"audio_url": "s3://b/k", "languge": "en"}, "invalid_input", "languge"),
    ("base64-not-string", lambda t, s: {"audio_base64": 42}, "invalid_input", "audio_base64 must be a string"),
    ("url-not-string", lambda t, s: {"audio_url": {"u": 1}}, "invalid_input", "audio_url must be a string"),
    ("timestamps-string", lambda t, s: {"audio_base64": "QQ==", "timestamps": "word"}, "invalid_input", "timestamps"),
    ("timestamps-unknown", lambda t, s: {"audio_base64": "QQ==", "timestamps": ["phoneme"]}, "invalid_input", "phoneme"),
    ("format-unknown", lambda t, s: {"audio_base64": "QQ==", "output_format": "mp4"}, "invalid_input", "'mp4'"),
    ("base64-invalid-chars", lambda t, s: {"audio_base64": "@@@@not base64!!"}, "invalid_input", "not valid base64"),
    ("base64-bad-padding", lambda t, s: {"audio_base64": "QUJDRA"}, "invalid_input", "not valid base64"),
    ("base64-empty", lambda t, s: {"audio_base64": "data:audio/mpeg;base64,"}, "invalid_input", "empty"),
    ("base64-decodes-empty", lambda t, s: {"audio_base64": " \n"}, "invalid_input", "empty"),
    ("base64-text-file", lambda t, s: {"audio_base64": b64(b"hello, this is a text file\n" * 40)}, "invalid_audio", "decoded"),
    ("base64-corrupt-mp3", lambda t, s: {"audio_base64": b64(b"ID3\x04\x00" + bytes(range(256)) * 30)}, "invalid_audio", "decoded"),
    ("base64-truncated-header", lambda t, s: {"audio_base64": b64(tone_mp3(t)[:40])}, "invalid_audio", "decoded"),
    ("base64-video-only", lambda t, s: {"audio_base64": b64(video_only(t))}, "no_audio_stream", "no audio stream"),
    ("base64-wav-unknown-tag", lambda t, s: {"audio_base64": b64(crafted_wav(t / "c.wav", 0x9999, 16).read_bytes())}, "invalid_audio", "decoded"),
    ("base64-wav-zero-bits", lambda t, s: {"audio_base64": b64(crafted_wav(t / "c.wav", 1, 0).read_bytes())}, "invalid_audio", "decoded"),
    ("base64-wav-one-hertz", lambda t, s: {"audio_base64": b64(one_hertz_wav(t / "c.wav", 2000 / 3600).read_bytes())}, "invalid_audio", "sample rate is 1 Hz"),
    ("base64-hls-playlist", lambda t, s: {"audio_base64": b64(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")}, "invalid_audio", "decoded"),
    ("url-ftp", lambda t, s: {"audio_url": "ftp://example.com/a.mp3"}, "url_rejected", "'ftp'"),
    ("url-file", lambda t, s: {"audio_url": "file:///etc/passwd"}, "url_rejected", "'file'"),
    ("url-gopher", lambda t, s: {"audio_url": "gopher://example.com/1"}, "url_rejected", "'gopher'"),
    ("url-data", lambda t, s: {"audio_url": "data:audio/wav;base64,UklGRg=="}, "url_rejected", "'data'"),
    ("url-no-scheme", lambda t, s: {"audio_url": "example.com/a.mp3"}, "url_rejected", "no scheme"),
    ("url-unreachable", lambda t, s: {"audio_url": f"http://127.0.0.1:{closed_port()}/a.mp3"}, "fetch_failed", "could not connect"),
    ("presigned-404", lambda t, s: {"audio_url": s.presigned_get("missing/a.mp3")}, "not_found", "404"),
    ("s3-missing-key", lambda t, s: {"audio_url": f"s3://{s.bucket}/missing/a.mp3"}, "not_found", "not found"),
    ("s3-missing-bucket", lambda t, s: {"audio_url": "s3://no-such-bucket-here/a.mp3"}, "not_found", "not found"),
    ("s3-no-key", lambda t, s: {"audio_url": f"s3://{s.bucket}/"}, "invalid_input", "key"),
    ("batch-not-list", lambda t, s: {"audios": {"audio_url": "s3://b/k"}}, "invalid_input", "audios must be a list"),
    ("batch-item-unknown-field", lambda t, s: {"audios": [{"url": "s3://b/k"}]}, "invalid_input", "audios[0] has unknown"),
    ("batch-id-lone-surrogate", lambda t, s: {"audios": [{"audio_url": "s3://b/k", "id": "\ud83d"}]}, "invalid_input", "audios[0].id is not valid Unicode text"),
    ("url-safe-base64", lambda t, s: {"audio_base64": "-_-_"}, "invalid_input", "is URL-safe base64"),
    ("malformed-data-prefix", lambda t, s: {"audio_base64": "data:audio/wav,UklGRg=="}, "invalid_input", "malformed data: prefix"),
]  # fmt: skip


def assert_failure(result: dict[str, Any], error_type: str, phrase: str, job_root: Path) -> None:
    """The failure contract, the right code, an actionable message, and no leftovers."""
    assert json.loads(json.dumps(result)) == result
    assert result["success"] is False
    assert result["error_type"] == error_type, result
    assert isinstance(result["error"], str)
    assert "\n" not in result["error"]
    assert phrase in result["error"], result["error"]
    assert "Traceback" not in result["error"]
    assert "X-Amz-Signature" not in result["error"]
    assert list(job_root.iterdir()) == []


@pytest.mark.parametrize(
    ("make_input", "error_type", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_clearly(
    tmp_path: Path, local_s3: LocalS3, job_root: Path, make_input: Callable, error_type: str, phrase: str
) -> None:
    result = handler.handler({"id": "bad", "input": make_input(tmp_path, local_s3)})
    assert_failure(result, error_type, phrase, job_root)


def test_files_without_a_decoder_as_a_workers_first_jobs_leave_the_decoder_helpers_on(
    tmp_path: Path, job_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = helper_pool.DecoderPool()  # a worker's first jobs: no helper has answered yet
    monkeypatch.setattr(helper_pool, "pool", fresh)
    try:
        crafted = [crafted_wav(tmp_path / "tag.wav", 0x9999, 16), crafted_wav(tmp_path / "bits.wav", 1, 0)]
        for path in crafted:
            result = handler.handler({"id": "crafted", "input": {"audio_base64": b64(path.read_bytes())}})
            assert_failure(result, "invalid_audio", "decoded", job_root)
        batch = {"audios": [{"audio_base64": b64(path.read_bytes())} for path in crafted]}
        assert handler.handler({"id": "crafted-batch", "input": batch})["failed"] == 2
        assert not fresh.broken
        clip = encode_clip(speech("four"), tmp_path / "clip.opus", "-c:a", "libopus")
        answer = fresh.decode(clip, 30.0)
        assert answer is not None
        assert answer.pcm
        assert (
            handler.handler({"id": "small", "input": {"audio_base64": b64(clip.read_bytes())}})["text"]
            == "four"
        )
    finally:
        fresh.close()


def test_http_is_refused_unless_switched_on(job_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "ALLOW_HTTP", False)
    result = handler.handler({"id": "bad", "input": {"audio_url": "http://example.com/a.mp3"}})
    assert_failure(result, "url_rejected", "'http'", job_root)


def test_oversize_base64_payload(job_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BASE64_CHARS", 1000)
    result = handler.handler({"id": "bad", "input": {"audio_base64": "A" * 1004}})
    assert_failure(result, "payload_too_large", "audio_url", job_root)


def test_too_long_audio(tmp_path: Path, job_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_AUDIO_SECONDS", 1.0)
    result = handler.handler({"id": "bad", "input": {"audio_base64": b64(tone_mp3(tmp_path, 3.0))}})
    assert_failure(result, "audio_too_long", "limit", job_root)


def test_oversize_download(
    tmp_path: Path, local_s3: LocalS3, job_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = local_s3.put("big/tone.mp3", tone_mp3(tmp_path, 3.0))
    monkeypatch.setattr(config, "MAX_DOWNLOAD_BYTES", 1000)
    result = handler.handler({"id": "bad", "input": {"audio_url": uri}})
    assert_failure(result, "download_too_large", "limit", job_root)


def test_s3_access_denied(local_s3: LocalS3, denied_bucket: str, job_root: Path) -> None:
    for url in (
        local_s3.presigned_get("secret.wav", bucket=denied_bucket),
        f"s3://{denied_bucket}/secret.wav",
    ):
        result = handler.handler({"id": "bad", "input": {"audio_url": url}})
        assert_failure(result, "access_denied", "denied", job_root)


def test_s3_uri_without_credentials(job_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "S3_ACCESS_KEY", None)
    monkeypatch.setattr(config, "S3_SECRET_KEY", None)
    result = handler.handler({"id": "bad", "input": {"audio_url": "s3://bucket/key.mp3"}})
    assert_failure(result, "access_denied", "S3_ACCESS_KEY", job_root)
