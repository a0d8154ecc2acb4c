"""Concurrent jobs: shared model calls, isolation, cancellation, backpressure, preload and precision.

In-process tests run several jobs at once through `handler.async_handler`, as the SDK does; the
worker-loop tests run `python -u handler.py` against a job queue on 127.0.0.1.
"""

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import config
import handler
from tests.support.media import b64, encode, speech
from tests.support.model_spy import ModelSpy
from tests.support.worker import job_queue, start_worker_loop, stop_worker
from utils.audio import decoding
from utils.job import inflight

WORDS = ["one two three", "four five", "six seven eight", "nine zero", "two two five"]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ModelSpy:
    return ModelSpy(monkeypatch)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each of WORDS spoken, as base64 FLAC."""
    directory = tmp_path_factory.mktemp("clips")
    return {words: b64(encode(speech(words), directory / f"{i}.flac")) for i, words in enumerate(WORDS)}


def run_concurrently(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs the jobs at once through the async handler, as the SDK's worker loop does."""

    async def main() -> list[dict[str, Any]]:
        jobs = [
            handler.async_handler({"id": f"job-{i}", "input": job_input})
            for i, job_input in enumerate(inputs)
        ]
        return await asyncio.gather(*jobs)

    return asyncio.run(main())


def decoded_length(clip: str, tmp_path: Path) -> int:
    """The number of samples the worker decodes a base64 clip to."""
    path = tmp_path / "probe.flac"
    path.write_bytes(base64.b64decode(clip))
    return decoding.decode(path).size


def test_jobs_at_once_share_a_model_call_and_each_gets_its_own_words(
    spy: ModelSpy, clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 1000.0)  # both jobs' items are surely queued together
    first, second = WORDS[0], WORDS[1]
    results = run_concurrently([{"audio_base64": clips[first]}, {"audio_base64": clips[second]}])
    assert [result["text"] for result in results] == [first, second]
    assert spy.calls, spy.calls
    assert len(spy.calls[0]) == 2, spy.calls
    assert [result["meta"]["batch"] for result in results] == [2, 2]


def test_a_broken_item_fails_only_its_own_job(
    spy: ModelSpy, clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, job_root: Path
) -> None:
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 1000.0)
    bad, good = WORDS[2], WORDS[3]
    spy.fail_on_length = decoded_length(clips[bad], tmp_path)
    results = run_concurrently([{"audio_base64": clips[bad]}, {"audio_base64": clips[good]}])
    assert results[0] == {
        "success": False,
        "error": "internal error while transcribing; the worker logged the details",
        "error_type": "internal",
    }
    assert results[1]["success"] is True
    assert results[1]["text"] == good
    # They met in one call; after it failed, each ran alone, so only the bad one failed again.
    assert [len(call) for call in spy.calls] == [2, 1, 1]


def children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def test_a_cancelled_job_stops_its_ffmpeg_and_leaves_no_files(
    clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, job_root: Path
) -> None:
    # A stand-in ffmpeg that never finishes, so that the job is surely decoding when it is cancelled.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(config, "FFMPEG_BINARY", str(fake))
    monkeypatch.setattr(config, "DECODER_HELPERS", 0)  # the ffmpeg program, not a decoder helper
    before = {child.pid for child in children()}

    async def main() -> None:
        task = asyncio.create_task(
            handler.async_handler({"id": "cancelled", "input": {"audio_base64": clips[WORDS[0]]}})
        )
        started = time.monotonic()
        while not [c for c in children() if c.pid not in before and c.name() == "sleep"]:
            assert time.monotonic() - started < 30, "ffmpeg never started"
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 30
    assert [child for child in children() if child.pid not in before] == []
    assert list(job_root.iterdir()) == []


def test_a_cancelled_job_leaves_the_queue_before_its_model_call(
    spy: ModelSpy, clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, job_root: Path
) -> None:
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 0.0)
    spy.delay = 2.0  # the first job holds the model while the second one waits in the queue
    waiting = decoded_length(clips[WORDS[1]], tmp_path)

    async def main() -> dict[str, Any]:
        first = asyncio.create_task(
            handler.async_handler({"id": "a", "input": {"audio_base64": clips[WORDS[0]]}})
        )
        while not spy.calls:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(
            handler.async_handler({"id": "b", "input": {"audio_base64": clips[WORDS[1]]}})
        )
        await asyncio.sleep(1.0)  # fetched, decoded and queued by now; the model is still busy
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        return await first

    result = asyncio.run(main())
    assert result["text"] == WORDS[0]
    assert all(waiting not in call for call in spy.calls), spy.calls
    assert list(job_root.iterdir()) == []


def test_jobs_past_the_audio_cap_wait_and_all_succeed(
    clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    inputs = [{"audio_base64": clips[words]} for words in WORDS[:3]]
    # Room for about one clip at a time (each is 1.5-2.5 s).
    monkeypatch.setattr(config, "MAX_INFLIGHT_AUDIO_SECONDS", 3.0)
    monkeypatch.setattr(inflight.budget, "peak", 0.0)  # reset; the budget is process-wide
    results = run_concurrently(inputs)
    assert [result["text"] for result in results] == WORDS[:3]
    total = sum(result["duration"] for result in results)
    assert max(result["duration"] for result in results) <= inflight.budget.peak <= 3.0 < total
    assert inflight.budget.in_use == 0.0


def test_a_large_job_over_the_cap_on_its_own_is_refused_before_decoding(
    spy: ModelSpy, clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "MAX_INFLIGHT_AUDIO_SECONDS", 1.0)
    monkeypatch.setattr(config, "DECODE_GUESS_MAX_SECONDS", 1.0)  # every file is probed first
    # Decoding would fail loudly: the refusal must come from the probed length alone.
    monkeypatch.setattr(config, "FFMPEG_BINARY", "/nonexistent/ffmpeg")
    result = handler.handler({"id": "big", "input": {"audio_base64": clips[WORDS[0]]}})
    assert result["success"] is False
    assert result["error_type"] == "audio_too_long"
    assert "MAX_INFLIGHT_AUDIO_SECONDS" in result["error"]
    assert spy.calls == []
    assert inflight.budget.in_use == 0.0


def test_a_small_job_over_the_cap_is_refused_after_a_bounded_prefix(
    spy: ModelSpy, clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    # Small files are not probed first: at most the cap (plus a second) is decoded before the probe.
    monkeypatch.setattr(config, "MAX_INFLIGHT_AUDIO_SECONDS", 0.5)
    monkeypatch.setattr(inflight.budget, "peak", 0.0)
    result = handler.handler({"id": "big", "input": {"audio_base64": clips[WORDS[0]]}})
    assert result["error_type"] == "audio_too_long"
    assert "MAX_INFLIGHT_AUDIO_SECONDS" in result["error"]
    assert spy.calls == []
    assert inflight.budget.peak <= 0.5
    assert inflight.budget.in_use == 0.0


@pytest.mark.parametrize("precision", ["bf16", "fp32", "auto"])
def test_precision_on_the_cpu_is_fp32_with_the_same_words(
    precision: str, clips: dict[str, str], monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    # torch's CPU LSTM kernels refuse bf16 autocast, so every setting runs fp32 here (logged for bf16).
    monkeypatch.setattr(config, "PRECISION", precision)
    result = handler.handler({"id": "p", "input": {"audio_base64": clips[WORDS[4]]}})
    assert result["text"] == WORDS[4]
    assert result["meta"]["precision"] == "float32"


# --- the SDK's real worker loop ----------------------------------------------------------------------


@pytest.fixture
def worker_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    assert [p for p in tmp_path.iterdir() if p.name.startswith(config.JOB_DIR_PREFIX)] == []


def test_the_worker_loop_runs_jobs_at_once_each_answered_once_with_its_words(
    clips: dict[str, str], worker_dir: Path
) -> None:
    jobs = [{"id": f"job-{i}", "input": {"audio_base64": clips[words]}} for i, words in enumerate(WORDS)]
    jobs.append({"id": "broken", "input": {"audio_base64": "bm90IGF1ZGlv"}})  # "not audio"
    with job_queue(jobs) as queue:
        worker = start_worker_loop(queue, worker_dir, MAX_CONCURRENCY="4", BATCH_WAIT_MS="300")
        try:
            assert queue.done.wait(timeout=180), "not every job was answered"
        finally:
            output = stop_worker(worker)
        finals = queue.finished()
    assert len(finals) == len(jobs), output[-3000:]
    outputs = {
        post["output"]["text"] if post["output"].get("success") else post["output"]["error_type"]
        for post in finals
    }
    assert outputs == {*WORDS, "invalid_audio"}
    assert any(post["output"].get("meta", {}).get("batch", 1) > 1 for post in finals), (
        "no model call was shared"
    )


def test_the_model_is_loaded_before_the_first_job_is_taken(clips: dict[str, str], worker_dir: Path) -> None:
    with job_queue([{"id": "first", "input": {"audio_base64": clips[WORDS[0]]}}]) as queue:
        worker = start_worker_loop(queue, worker_dir)
        try:
            assert queue.done.wait(timeout=120), "the job was not answered"
        finally:
            output = stop_worker(worker)
    loaded = output.find("loaded on cpu")
    taken = output.find("Jobs in queue")
    assert 0 <= loaded < taken, output[-3000:]
    assert queue.finished()[0]["output"]["text"] == WORDS[0]
