"""The per-job deadline (config.JOB_TIMEOUT_SECONDS, utils/job/deadline.py): a whole job ends in time.

Downloads and ffmpeg get no more than the job's time left, stage boundaries check it, and what the
client then sees is `job_timeout`, not the stage's own timeout (whose much longer limit it never reached).
"""

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import config
import handler
from tools import synth
from utils.asr import attention
from utils.asr import model as asr_model
from utils.errors import FetchTimeoutError, InvalidInputError, JobTimeoutError
from utils.job.deadline import Deadline, cap_to_job

DRIP_SECONDS = 0.05  # one byte this often: no single read ever times out, only the deadline stops it


class _DripHandler(BaseHTTPRequestHandler):
    """Answers every GET with a large declared body sent one byte at a time."""

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""

    def do_GET(self) -> None:
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.send_header("Content-Type", "audio/mpeg")
        self.end_headers()
        try:
            for _ in range(int(30 / DRIP_SECONDS)):
                self.wfile.write(b"\xff")
                self.wfile.flush()
                time.sleep(DRIP_SECONDS)
        except OSError:
            pass  # the worker hung up, as it should


class _DripServer(ThreadingHTTPServer):
    """The slow origin on 127.0.0.1, counting the requests it received."""

    daemon_threads = True
    requests = 0

    @property
    def url(self) -> str:
        """The URL of its (never finished) audio."""
        return f"http://127.0.0.1:{self.server_address[1]}/slow.mp3"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stays quiet about clients hanging up; reports anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


@pytest.fixture
def drip(monkeypatch: pytest.MonkeyPatch, loopback_only: None) -> Iterator[_DripServer]:
    """A server whose body never finishes, with http and loopback URLs admitted for it."""
    monkeypatch.setattr(config, "ALLOW_HTTP", True)
    monkeypatch.setattr(config, "ALLOW_PRIVATE_ADDRESSES", True)
    server = _DripServer(("127.0.0.1", 0), _DripHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _every_job_cleans_up(job_root: Path) -> Path:
    """Every test here checks that its jobs leave no files, timed out or not."""
    return job_root


def wav_b64(tmp_path: Path, samples: np.ndarray) -> str:
    """The samples as a base64 WAV file."""
    path = tmp_path / "clip.wav"
    synth.write_wav(path, samples)
    return base64.b64encode(path.read_bytes()).decode("ascii")


def run_timed(job_input: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Runs the handler; returns the plain-JSON result and the seconds it took."""
    started = time.monotonic()
    result = handler.handler({"id": "deadline", "input": job_input})
    assert json.loads(json.dumps(result)) == result
    return result, time.monotonic() - started


def assert_job_timeout(result: dict[str, Any], seconds: float) -> None:
    assert result == {
        "success": False,
        "error": f"the job did not finish within {seconds:g} s",
        "error_type": "job_timeout",
    }


def test_a_download_is_cut_at_the_job_deadline_not_its_own(
    drip: _DripServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DOWNLOAD_TIMEOUT_SECONDS", 300.0)
    monkeypatch.setattr(config, "JOB_TIMEOUT_SECONDS", 1.0)
    result, elapsed = run_timed({"audio_url": drip.url})
    assert_job_timeout(result, 1.0)
    assert drip.requests == 1
    assert 1.0 <= elapsed < 4.0


def test_ffmpeg_is_killed_at_the_job_deadline_not_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in binary that never finishes: a real ffmpeg cannot be made to hang on purpose quickly.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(config, "FFMPEG_BINARY", str(fake))
    monkeypatch.setattr(config, "DECODER_HELPERS", 0)  # the ffmpeg program, not a decoder helper
    monkeypatch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 300.0)
    monkeypatch.setattr(config, "JOB_TIMEOUT_SECONDS", 1.0)
    result, elapsed = run_timed({"audio_base64": wav_b64(tmp_path, np.zeros(1600, dtype=np.float32))})
    assert_job_timeout(result, 1.0)
    assert 1.0 <= elapsed < 4.0


def test_nothing_is_fetched_once_the_time_is_up(drip: _DripServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "JOB_TIMEOUT_SECONDS", 0.0)
    result, _ = run_timed({"audio_url": drip.url})
    assert_job_timeout(result, 0.0)
    assert drip.requests == 0


def test_a_batch_whose_slow_item_ran_out_of_time_fails_as_a_whole(
    tmp_path: Path, drip: _DripServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The good item is ready long before the deadline; the check before transcribing still stops the
    # job, where without it the client would get a success with one failed item, after the deadline.
    monkeypatch.setattr(config, "JOB_TIMEOUT_SECONDS", 1.0)
    good = wav_b64(tmp_path, synth.synthesize("four two"))
    result, elapsed = run_timed({"audios": [{"audio_base64": good}, {"audio_url": drip.url}]})
    assert_job_timeout(result, 1.0)
    assert elapsed < 4.0


def test_transcription_stops_between_windows_when_the_time_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 s of audio in 5 s windows: at least five model calls if nothing stopped it.
    monkeypatch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 3.0)
    monkeypatch.setattr(config, "LOCAL_ATTENTION_MAX_SECONDS", 5.0)
    monkeypatch.setattr(config, "WINDOW_SECONDS", 5.0)
    monkeypatch.setattr(config, "WINDOW_OVERLAP_SECONDS", 1.0)
    monkeypatch.setattr(config, "JOB_TIMEOUT_SECONDS", 2.0)
    model = asr_model.get_model()
    real_transcribe = model.transcribe
    calls: list[float] = []

    def slow_transcribe(*args: Any, **kwargs: Any) -> Any:
        # Injected delay: the tiny CPU model takes milliseconds per window, a real one on a long
        # file takes minutes.
        calls.append(time.monotonic())
        time.sleep(1.2)
        return real_transcribe(*args, **kwargs)

    monkeypatch.setattr(model, "transcribe", slow_transcribe)
    result, elapsed = run_timed({"audio_base64": wav_b64(tmp_path, np.zeros(20 * 16_000, dtype=np.float32))})
    assert_job_timeout(result, 2.0)
    assert 1 <= len(calls) <= 2
    assert elapsed < 5.0
    assert attention.current_attention(model)[:2] == ("rel_pos", (-1, -1))


def test_deadline_check_raises_once_the_time_is_up() -> None:
    Deadline(60).check()
    deadline = Deadline(0.2)
    time.sleep(0.2)
    with pytest.raises(JobTimeoutError, match=r"^the job did not finish within 0\.2 s$") as raised:
        deadline.check()
    assert raised.value.error_type == "job_timeout"


def test_cap_to_job_applies_inside_a_job_only() -> None:
    assert cap_to_job(300.0) == 300.0
    deadline = Deadline(10.0)
    with deadline.applied():
        assert 9.0 < cap_to_job(300.0) <= 10.0
        assert cap_to_job(2.0) == 2.0
        inner = threading.Thread(target=lambda: seen.append(cap_to_job(300.0)))
        seen: list[float] = []
        inner.start()
        inner.join()
    # Context variables do not cross into other threads: the handler applies the deadline in each.
    assert seen == [300.0]
    assert cap_to_job(300.0) == 300.0
    with Deadline(0).applied():
        assert cap_to_job(300.0) == 0.0


def test_an_error_after_the_deadline_is_reported_as_the_job_timeout() -> None:
    with pytest.raises(JobTimeoutError) as raised, Deadline(0).applied():
        raise FetchTimeoutError("audio_url: the download did not finish within 300 s")
    assert isinstance(raised.value.__cause__, FetchTimeoutError)
    # Before the deadline, errors pass through unchanged.
    with pytest.raises(InvalidInputError), Deadline(60).applied():
        raise InvalidInputError("audio_base64 is not valid base64")
