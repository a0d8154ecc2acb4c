"""Odd but valid audio through the real handler: channel layouts, polarity, tiny clips, late streams,
low sample rates. Every file is made here with espeak-ng and ffmpeg."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import config
import handler
from tests.support.media import b64, channels_file, one_hertz_wav, speech
from utils import audio

WORDS = "four one seven"


def transcribe(path: Path, **fields: object) -> dict:
    """The handler's answer for one file."""
    return handler.handler({"id": path.stem, "input": {"audio_base64": b64(path), **fields}})


@pytest.mark.parametrize(
    ("name", "count", "speaking", "layout"),
    [
        ("stereo-right.wav", 2, 1, ()),
        ("3ch-last.wav", 3, 2, ()),
        ("5.1-lfe.wav", 6, 3, ("-channel_layout", "5.1")),
        ("7.1-lfe.flac", 8, 3, ("-channel_layout", "7.1")),
        ("8ch-no-layout-4th.wav", 8, 3, ()),
        ("8ch-no-layout-last.wav", 8, 7, ()),
    ],
)
def test_speech_on_any_one_channel_survives_the_downmix(
    name: str, count: int, speaking: int, layout: tuple[str, ...], tmp_path: Path, job_root: Path
) -> None:
    voice = speech(WORDS)
    tracks = [voice if channel == speaking else np.zeros_like(voice) for channel in range(count)]
    clip = channels_file(tracks, tmp_path / name, *layout)
    assert audio.probe(clip).channels == count
    result = transcribe(clip)
    assert result["success"] is True, result
    assert result["text"] == WORDS


def test_a_channel_in_opposite_polarity_does_not_cancel_the_speech(tmp_path: Path, job_root: Path) -> None:
    voice = speech(WORDS)
    clip = channels_file([voice, -voice], tmp_path / "inverted.flac")
    result = transcribe(clip)
    assert result["success"] is True, result
    assert result["text"] == WORDS


def test_two_voices_on_two_channels_are_both_heard(tmp_path: Path, job_root: Path) -> None:
    first, second = speech("four one"), speech("seven two")
    silence = np.zeros_like(first)
    left = np.concatenate([first, np.zeros_like(second)])
    right = np.concatenate([silence, second])
    result = transcribe(channels_file([left, right], tmp_path / "call.wav"))
    assert result["text"] == "four one seven two"


def test_a_clip_under_a_second_keeps_its_times(tmp_path: Path, job_root: Path) -> None:
    voice = speech("seven")
    onset = int(np.flatnonzero(np.abs(voice) > 0.01)[0])
    short = voice[onset - 800 : onset + 10_000]  # 0.05 s before the word; 0.68 s in all
    padded = np.concatenate([short, np.zeros(2 * config.SAMPLE_RATE, dtype=np.float32)])
    times = []
    for samples, name in ((short, "short.wav"), (padded, "padded.wav")):
        result = transcribe(channels_file([samples], tmp_path / name), timestamps=["word"])
        assert result["text"] == "seven", result
        times.append(result["timestamps"]["word"][0])
    assert times[0]["start"] == times[1]["start"]
    assert times[0]["start"] < 0.2


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_times_follow_the_container_when_the_sound_starts_late(
    container: str, tmp_path: Path, job_root: Path
) -> None:
    voice = channels_file([speech(WORDS)], tmp_path / "voice.wav")
    alone = transcribe(voice, timestamps=["word"], output_format=["json", "srt"])
    video = tmp_path / f"late.{container}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error"]
        + ["-f", "lavfi", "-i", "color=size=32x32:rate=5:d=16"]
        + ["-itsoffset", "10", "-i", str(voice), "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac"]
        + [str(video)],
        check=True,
    )
    late = transcribe(video, timestamps=["word"], output_format=["json", "srt"])
    assert late.get("text") == WORDS, late
    assert 9.9 <= late["meta"]["audio_start_seconds"] <= 10.0
    for moved, original in zip(late["timestamps"]["word"], alone["timestamps"]["word"], strict=True):
        assert moved["start"] - original["start"] == pytest.approx(10.0, abs=0.1)
    assert late["srt"].splitlines()[1].startswith("00:00:10,")
    assert "audio_start_seconds" not in alone["meta"]


def test_a_one_hertz_header_does_not_make_ffmpeg_hold_gigabytes(tmp_path: Path) -> None:
    clip = one_hertz_wav(tmp_path / "one-hertz.wav", hours=1)
    # A fresh interpreter, so the children's peak is this decode's ffmpeg (and ffprobe) alone.
    script = (
        "import resource, sys; from pathlib import Path; from utils import audio; "
        "samples = audio.decode(Path(sys.argv[1])); "
        "print(samples.size, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(clip)],
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    samples, child_peak_kb = map(int, found.stdout.split())
    assert samples == 3600 * config.SAMPLE_RATE
    # Unframed, ffmpeg upsampled 4096-sample packets into 260 MB frames and peaked at about 1.4 GB.
    assert child_peak_kb < 150 * 1024
