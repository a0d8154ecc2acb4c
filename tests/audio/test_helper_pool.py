"""Decoder helpers as the worker uses them: reused, bounded, and replaced when they hang, die or their
job is cancelled, with the ffmpeg program taking any item a helper could not."""

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest

import config
from tests.support.media import channels_file, crafted_wav, encode, speech
from utils.audio import decoding, helper_pool
from utils.errors import AudioDecodeError, AudioTimeoutError, WorkerError
from utils.job.deadline import Deadline


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[helper_pool.DecoderPool]:
    """A pool of the test's own, closed at the end (the worker's pool is left alone)."""
    fresh = helper_pool.DecoderPool()
    monkeypatch.setattr(helper_pool, "pool", fresh)
    yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(speech("six seven eight"), tmp_path_factory.mktemp("clip") / "clip.opus", "-c:a", "libopus")


def helpers() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children()
        if "utils.audio.helper" in " ".join(child.cmdline()) or child.name() == "sleep"
    ]


def test_one_helper_serves_item_after_item(pool: helper_pool.DecoderPool, clip: Path) -> None:
    before = {child.pid for child in helpers()}
    first, stream = decoding.decode_small(clip, 30.0)
    started = {child.pid for child in helpers()} - before
    second, _ = decoding.decode_small(clip, 30.0)
    assert {child.pid for child in helpers()} - before == started
    assert len(started) == 1
    assert np.array_equal(first, second)
    assert stream.channels == 1
    assert stream.sample_rate == 48000


def test_channels_are_mixed_as_the_ffmpeg_program_output_is(
    pool: helper_pool.DecoderPool, tmp_path: Path
) -> None:
    spoken = speech("one two three")
    inverted = channels_file([spoken, -spoken], tmp_path / "inverted.wav")
    samples, stream = decoding.decode_small(inverted, 30.0)
    assert stream.channels == 2
    assert np.allclose(samples, decoding.decode(inverted), atol=1e-5)
    assert np.abs(samples).max() > 0.1  # polarity aligned, not cancelled


def test_at_most_the_configured_helpers_run_and_the_rest_wait(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DECODER_HELPERS", 1)
    monkeypatch.setattr(config, "DECODER_HELPER_WAIT_SECONDS", 60.0)  # they wait rather than go to ffmpeg
    before = {child.pid for child in helpers()}
    with ThreadPoolExecutor(6) as threads:
        results = list(threads.map(lambda _: decoding.decode_small(clip, 30.0)[0], range(6)))
    assert all(np.array_equal(result, results[0]) for result in results)
    assert len({child.pid for child in helpers()} - before) == 1


def test_a_helper_that_hangs_is_killed_and_replaced(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in helper that never answers: a real one cannot be made to hang on purpose quickly.
    monkeypatch.setattr(helper_pool, "HELPER_COMMAND", ("sleep", "30"))
    monkeypatch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(AudioTimeoutError, match="longer than 0.5 s"):
        pool.decode(clip, 30.0)
    assert [child for child in helpers() if child.name() == "sleep"] == []
    monkeypatch.undo()
    samples, _ = decoding.decode_small(clip, 30.0)  # a fresh helper takes the next item
    assert samples.size > 0


def test_a_helper_that_dies_hands_its_item_to_the_ffmpeg_program(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in helper that exits at once, as one that crashed on a hostile file would.
    monkeypatch.setattr(helper_pool, "HELPER_COMMAND", ("true",))
    assert pool.decode(clip, 30.0) is None
    samples, stream = decoding.decode_small(clip, 30.0)
    assert np.array_equal(samples, decoding.decode(clip))
    assert stream.sample_rate == 48000


def test_helpers_that_cannot_start_are_not_started_again(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in that dies before it says it is ready, as a helper without PyAV would.
    monkeypatch.setattr(helper_pool, "HELPER_COMMAND", ("true",))
    for _ in range(helper_pool.START_FAILURES_TO_GIVE_UP):
        assert not pool.broken
        assert pool.decode(clip, 30.0) is None
    assert pool.broken
    before = {child.pid for child in helpers()}
    for _ in range(3):
        assert decoding.decode_small(clip, 30.0)[0].size > 0
    assert {child.pid for child in helpers()} - before == set()


def test_a_cancelled_job_kills_its_helper_and_reports_the_cancellation(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(helper_pool, "HELPER_COMMAND", ("sleep", "30"))
    job = Deadline(60)
    threading.Timer(0.3, job.cancel).start()
    started = time.monotonic()
    with job.applied(), pytest.raises(WorkerError) as raised:
        pool.decode(clip, 30.0)
    assert raised.value.error_type == "cancelled"
    assert time.monotonic() - started < 5
    assert [child for child in helpers() if child.name() == "sleep"] == []


def test_no_helpers_means_the_ffmpeg_program(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DECODER_HELPERS", 0)
    before = {child.pid for child in helpers()}
    assert pool.decode(clip, 30.0) is None
    samples, _ = decoding.decode_small(clip, 30.0)
    assert samples.size > 0
    assert {child.pid for child in helpers()} - before == set()


def test_bad_files_get_the_ffmpeg_programs_errors(pool: helper_pool.DecoderPool, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"ID3" + bytes(range(256)) * 8)
    with pytest.raises(WorkerError) as raised:
        decoding.decode_small(garbage, 30.0)
    assert (
        str(raised.value)
        == "the file could not be decoded as audio (corrupt, truncated or unsupported format)"
    )


def test_files_without_a_decoder_as_a_workers_first_jobs_leave_the_helpers_on(
    pool: helper_pool.DecoderPool, clip: Path, tmp_path: Path
) -> None:
    crafted = [
        crafted_wav(tmp_path / "unknown-tag.wav", 0x9999, 16),
        crafted_wav(tmp_path / "zero-bits.wav", 1, 0),
    ]
    before = {child.pid for child in helpers()}
    for path in crafted * 2:
        with pytest.raises(AudioDecodeError) as raised:
            decoding.decode_small(path, 30.0)
        assert raised.value.error_type == "invalid_audio"
    assert not pool.broken
    started = {child.pid for child in helpers()} - before
    assert len(started) == 1  # one helper answered all four: none died
    answer = pool.decode(clip, 30.0)
    assert answer is not None
    assert answer.pcm
    assert {child.pid for child in helpers()} - before == started


def test_a_helper_that_dies_on_a_file_is_replaced(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in that starts, then dies on its first file, as one that crashed in the decoder would.
    ready_then_die = 'import sys; print(\'{"status": "ready"}\', flush=True); sys.stdin.readline()'
    monkeypatch.setattr(helper_pool, "HELPER_COMMAND", (sys.executable, "-c", ready_then_die))
    for _ in range(helper_pool.START_FAILURES_TO_GIVE_UP + 1):
        assert pool.decode(clip, 30.0) is None
    assert not pool.broken
    monkeypatch.undo()
    answer = pool.decode(clip, 30.0)
    assert answer is not None
    assert answer.pcm


def test_an_item_that_finds_every_helper_busy_goes_to_the_ffmpeg_program(
    pool: helper_pool.DecoderPool, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DECODER_HELPERS", 1)
    monkeypatch.setattr(config, "FFMPEG_TIMEOUT_SECONDS", 5.0)
    busy = pool._take(time.monotonic())  # the one helper, held as a slow item of another job holds it
    assert busy is not None
    try:
        started = time.monotonic()
        assert pool.decode(clip, 30.0) is None  # not waited for until the decode timeout
        waited = time.monotonic() - started
        samples, _ = decoding.decode_small(clip, 30.0)
    finally:
        pool._give_back(busy)
    assert waited < 2.5  # DECODER_HELPER_WAIT_SECONDS, far below FFMPEG_TIMEOUT_SECONDS
    assert np.array_equal(samples, decoding.decode(clip))
