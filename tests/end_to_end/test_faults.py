"""After any failure the next job runs normally: one failing job of each kind, then a good one.

Each test checks what a failure could leave behind in a long-lived worker: the model in another
attention mode, files in the temp root, open file descriptors, and child processes (ffmpeg).
"""

import base64
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

import config
import handler
from tools import synth
from utils.asr import attention
from utils.asr import model as asr_model
from utils.audio import helper_pool

GOOD_WORDS = "three one four"


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Spoken digit words as FLAC, made once for the module."""
    directory = tmp_path_factory.mktemp("clip")
    pad = np.zeros(int(0.3 * config.SAMPLE_RATE), dtype=np.float32)
    synth.write_wav(directory / "clip.wav", np.concatenate([pad, synth.synthesize(GOOD_WORDS), pad]))
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(directory / "clip.wav"),
            str(directory / "clip.flac"),
        ],
        check=True,
    )
    return (directory / "clip.flac").read_bytes()


class _BrokenHandler(BaseHTTPRequestHandler):
    """Declares the whole clip, sends its first half, then closes the connection."""

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""

    def do_GET(self) -> None:
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "audio/flac")
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@pytest.fixture
def broken_url(good_clip: bytes, monkeypatch: pytest.MonkeyPatch, loopback_only: None) -> Iterator[str]:
    """An http URL on 127.0.0.1 whose download breaks off half-way, with http and loopback admitted."""
    monkeypatch.setattr(config, "ALLOW_HTTP", True)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenHandler)
    server.daemon_threads = True
    server.body = good_clip
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.flac"
    server.shutdown()
    server.server_close()


def process_state() -> tuple[int, int]:
    """This process's open file descriptors and child processes (ffmpeg among them)."""
    return len(os.listdir("/proc/self/fd")), len(psutil.Process().children(recursive=True))


def fail_in_ffmpeg(patch: pytest.MonkeyPatch, tmp_path: Path, clip: bytes, url: str) -> dict[str, Any]:
    # A stand-in binary that never finishes: a real ffmpeg cannot be made to hang on purpose quickly.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    patch.setattr(config, "FFMPEG_BINARY", str(fake))
    patch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 0.5)
    patch.setattr(config, "DECODER_HELPERS", 0)  # the ffmpeg program, not a decoder helper
    return {"audio_base64": base64.b64encode(clip).decode()}


def hang_in_decoder_helper(
    patch: pytest.MonkeyPatch, tmp_path: Path, clip: bytes, url: str
) -> dict[str, Any]:
    # A stand-in helper that never answers: a real one cannot be made to hang on purpose quickly.
    patch.setattr(helper_pool, "HELPER_COMMAND", ("sleep", "30"))
    patch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 0.5)
    patch.setattr(helper_pool, "pool", helper_pool.DecoderPool())  # else an idle real helper takes it
    return {"audio_base64": base64.b64encode(clip).decode()}


def fail_in_transcriber(patch: pytest.MonkeyPatch, tmp_path: Path, clip: bytes, url: str) -> dict[str, Any]:
    # Local attention for this job, so that the failure strikes with the model out of its default mode.
    patch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 1.0)
    model = asr_model.get_model()
    real_transcribe = model.transcribe

    def broken(*args: Any, **kwargs: Any) -> Any:
        # Injected: the real model does not fail on good audio; a library bug or a driver fault could.
        if attention.current_attention(model)[0] != config.LOCAL_ATTENTION_MODEL:
            return real_transcribe(*args, **kwargs)  # the job then succeeds, and the test fails
        raise RuntimeError("injected failure inside the model")

    patch.setattr(model, "transcribe", broken)
    return {"audio_base64": base64.b64encode(clip).decode(), "timestamps": True}


def fail_in_download(patch: pytest.MonkeyPatch, tmp_path: Path, clip: bytes, url: str) -> dict[str, Any]:
    return {"audio_url": url}


FAULTS: dict[str, tuple[Callable[..., dict[str, Any]], str]] = {
    "ffmpeg-timeout": (fail_in_ffmpeg, "decode_timeout"),
    "decoder-helper-hangs": (hang_in_decoder_helper, "decode_timeout"),
    "transcriber-exception": (fail_in_transcriber, "internal"),
    "download-breaks-off": (fail_in_download, "fetch_failed"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_the_job_after_a_failure_runs_normally(
    fault: str, tmp_path: Path, good_clip: bytes, broken_url: str, job_root: Path
) -> None:
    make_failing_input, error_type = FAULTS[fault]
    good_input = {"audio_base64": base64.b64encode(good_clip).decode()}
    model = asr_model.get_model()
    # A first good job loads everything a job ever loads, so that the baseline is a warm worker's.
    assert handler.handler({"id": "warm-up", "input": good_input})["text"] == GOOD_WORDS
    mode = attention.current_attention(model)
    assert mode[:2] == ("rel_pos", (-1, -1))
    baseline = process_state()

    with pytest.MonkeyPatch.context() as patch:
        failing_input = make_failing_input(patch, tmp_path, good_clip, broken_url)
        failed = handler.handler({"id": f"fault-{fault}", "input": failing_input})
    assert failed["success"] is False, failed
    assert failed["error_type"] == error_type, failed
    # The failed job itself cleaned up; the good job below must not be what repairs the worker.
    assert attention.current_attention(model) == mode
    assert list(job_root.iterdir()) == []
    assert process_state() == baseline

    result = handler.handler({"id": "after-fault", "input": {**good_input, "timestamps": ["word"]}})
    assert result["success"] is True, result
    assert result["text"] == GOOD_WORDS
    assert [word["word"] for word in result["timestamps"]["word"]] == GOOD_WORDS.split()
    assert attention.current_attention(model) == mode
    assert list(job_root.iterdir()) == []
    assert process_state() == baseline
