"""utils/job/preparation.py: items from their sources to samples, with real ffmpeg and base64 inputs."""

import base64
import subprocess
from pathlib import Path

import pytest

import config
from utils.contract.validation import parse_input
from utils.errors import InvalidInputError
from utils.job.deadline import Deadline
from utils.job.inflight import Reservation, budget
from utils.job.preparation import decode_items, fetch_items, planned_seconds


def tone_wav(path: Path, seconds: float) -> str:
    """A sine tone as a base64 WAV file."""
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"sine=440:d={seconds}",
            str(path),
        ],
        check=True,
    )
    return base64.b64encode(path.read_bytes()).decode()


def test_a_batch_prepares_each_item_and_keeps_one_items_error_to_itself(tmp_path: Path) -> None:
    good = tone_wav(tmp_path / "tone.wav", 1.5)
    request = parse_input(
        {"audios": [{"audio_base64": good}, {"audio_base64": "!!!!"}, {"audio_base64": good}]}
    )
    job_dir = tmp_path / "job"
    job_dir.mkdir()

    prepared = fetch_items(request, job_dir, Deadline(60))
    # Small files are not probed: their length is guessed (generously) from their size.
    assert [item.probed_seconds for item in prepared] == [None, None, None]
    assert prepared[0].guessed_seconds >= 1.5
    assert prepared[1].error is not None
    assert planned_seconds(prepared) == prepared[0].guessed_seconds * 2  # the failed item holds nothing
    with Reservation(budget, Deadline(60)) as reservation:
        decode_items(request, prepared, Deadline(60), reservation)
        assert reservation.seconds == 3.0  # what was decoded, not what was guessed

    sizes = [item.samples.size if item.samples is not None else None for item in prepared]
    assert sizes == [24_000, None, 24_000]
    assert [item.seconds for item in prepared] == [1.5, 0.0, 1.5]
    assert isinstance(prepared[1].error, InvalidInputError)
    assert str(prepared[1].error).startswith("audio_base64 is not valid base64")
    assert all(item.fetch_seconds >= 0 and item.convert_seconds >= 0 for item in prepared)
    # The samples are in memory; the source files are gone already.
    assert [path.name for path in job_dir.rglob("*") if path.is_file()] == []


def test_a_single_item_failure_fails_the_job(tmp_path: Path) -> None:
    request = parse_input({"audio_base64": "!!!!"})
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    with pytest.raises(InvalidInputError, match="audio_base64 is not valid base64"):
        fetch_items(request, job_dir, Deadline(60))


def test_a_large_file_is_probed_and_an_unknown_length_counts_at_the_worst_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = parse_input({"audio_base64": tone_wav(tmp_path / "tone.wav", 1.0)})
    monkeypatch.setattr(config, "DECODE_GUESS_MAX_SECONDS", 1.0)  # the 88 kB file counts as large now
    job_dir = tmp_path / "job"
    (job_dir / "a").mkdir(parents=True)
    (job_dir / "b").mkdir()
    assert fetch_items(request, job_dir / "a", Deadline(60))[0].probed_seconds == 1.0

    monkeypatch.setattr(config, "MAX_INFLIGHT_AUDIO_SECONDS", 600.0)
    # ffprobe tells the length of nearly every file; one it cannot tell is made by making it fail.
    monkeypatch.setattr(config, "FFPROBE_BINARY", "/nonexistent/ffprobe")
    prepared = fetch_items(request, job_dir / "b", Deadline(60))
    assert prepared[0].probed_seconds is None
    assert prepared[0].guessed_seconds is None
    assert planned_seconds(prepared) == 600.0


def test_audio_longer_than_its_guess_is_probed_and_decoded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file far smaller per second than its guess assumes (here: the guess made tiny on purpose).
    monkeypatch.setattr(config, "DECODE_GUESS_BYTES_PER_SECOND", 10**9)
    monkeypatch.setattr(config, "DECODE_GUESS_MIN_SECONDS", 1.0)
    request = parse_input({"audio_base64": tone_wav(tmp_path / "tone.wav", 3.0)})
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    prepared = fetch_items(request, job_dir, Deadline(60))
    assert prepared[0].guessed_seconds == 1.0
    with Reservation(budget, Deadline(60)) as reservation:
        decode_items(request, prepared, Deadline(60), reservation)
        assert prepared[0].probed_seconds == 3.0
        assert prepared[0].seconds == 3.0
        assert reservation.seconds == 3.0
    assert [path for path in job_dir.rglob("*") if path.is_file()] == []
