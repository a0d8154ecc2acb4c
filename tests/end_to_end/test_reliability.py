"""Odd audio and exhausted memory: non-finite samples, impossible transcripts, host memory running out."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import config
import handler
from tests.support.media import b64, float_wav, one_hertz_wav, speech
from utils.asr import attention
from utils.asr import model as asr_model
from utils.asr.scheduler import scheduler
from utils.errors import UnreliableTranscriptError
from utils.job import inflight
from utils.job.deadline import Deadline

WORDS = "one two three four five six seven eight nine zero"


def with_non_finite(samples: np.ndarray) -> np.ndarray:
    broken = samples.copy()
    broken[1000], broken[2000], broken[3000] = np.nan, np.inf, -np.inf
    return broken


def test_non_finite_samples_become_silence_and_the_words_survive(tmp_path: Path, job_root: Path) -> None:
    clip = float_wav(with_non_finite(speech(WORDS)), tmp_path / "nan.wav")
    result = handler.handler({"id": "nan", "input": {"audio_base64": b64(clip)}})
    assert result["success"] is True, result
    assert result["text"] == WORDS


def test_a_transcript_no_speech_could_make_fails_as_unreliable() -> None:
    # Straight to the model, past the decoder's repair: one NaN makes it emit a token per frame.
    future = scheduler.submit(with_non_finite(speech(WORDS)), frozenset(), Deadline(60), lambda message: None)
    error = future.exception(timeout=60)
    assert isinstance(error, UnreliableTranscriptError)
    assert error.error_type == "unreliable_transcript"
    assert "words in 4." in str(error)


class HostMemorySpy:
    """Makes the model's calls run out of host memory in the given attention modes (injected)."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, fail_in: tuple[str, ...], error: BaseException
    ) -> None:
        self.model = asr_model.get_model()
        self.real = self.model.transcribe
        self.fail_in = fail_in
        self.error = error
        monkeypatch.setattr(self.model, "transcribe", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Injected: exhausting this machine's memory for real would take the test run down with it.
        if attention.current_attention(self.model)[0] in self.fail_in:
            raise self.error
        return self.real(*args, **kwargs)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory"),
    ],
    ids=["MemoryError", "cpu-allocator"],
)
def test_host_memory_running_out_falls_back_then_fails_as_out_of_memory(
    error: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    clip = float_wav(speech(WORDS), tmp_path / "clip.wav")
    job = {"id": "oom", "input": {"audio_base64": b64(clip)}}
    with pytest.MonkeyPatch.context() as patch:
        HostMemorySpy(patch, ("rel_pos",), error)
        result = handler.handler(job)
    assert result["text"] == WORDS
    assert result["meta"]["attention"] == "local"
    assert result["meta"]["fallbacks"] == ["full: out of memory"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "FALLBACK_WINDOW_SECONDS", 1.0)
        HostMemorySpy(patch, ("rel_pos", "rel_pos_local_attn"), error)
        result = handler.handler(job)
    assert result == {
        "success": False,
        "error": "the audio did not fit this worker's memory even in windows",
        "error_type": "out_of_memory",
    }

    # The worker is healthy for the next job: default mode, right words.
    assert attention.current_attention(asr_model.get_model())[:2] == ("rel_pos", (-1, -1))
    assert handler.handler(job)["text"] == WORDS


def test_a_job_over_its_audio_limit_is_refused_without_decoding_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_JOB_AUDIO_SECONDS", 3600.0)
    # Such headers are refused outright unless the floors are lowered; the job limit must hold anyway.
    monkeypatch.setattr(config, "MIN_SAMPLE_RATE", 1)
    monkeypatch.setattr(config, "MIN_AUDIO_BYTES_PER_SECOND", 0.0)
    monkeypatch.setattr(inflight.budget, "peak", 0.0)  # reset; the budget is process-wide
    clip = one_hertz_wav(tmp_path / "tiny.wav", hours=12)
    assert clip.stat().st_size < 100_000
    result = handler.handler({"id": "bomb", "input": {"audios": [{"audio_base64": b64(clip)}] * 4}})
    assert result == {
        "success": False,
        "error": "the job's audio is 172800 s in all; the limit per job is 3600 s (MAX_JOB_AUDIO_SECONDS)",
        "error_type": "audio_too_long",
    }
    # Only each file's guessed prefix was ever held, never hours of samples.
    assert inflight.budget.peak < 4 * 200
    assert inflight.budget.in_use == 0.0


def test_a_large_job_over_its_audio_limit_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_JOB_AUDIO_SECONDS", 5.0)
    monkeypatch.setattr(config, "DECODE_GUESS_MAX_SECONDS", 1.0)  # every file is probed first
    monkeypatch.setattr(config, "FFMPEG_BINARY", "/nonexistent/ffmpeg")  # decoding would fail loudly
    clip = float_wav(speech(WORDS), tmp_path / "clip.wav")
    result = handler.handler({"id": "two", "input": {"audios": [{"audio_base64": b64(clip)}] * 2}})
    assert result["error_type"] == "audio_too_long"
    assert "(MAX_JOB_AUDIO_SECONDS)" in result["error"]
