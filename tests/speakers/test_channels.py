"""Per-channel transcripts (`channels: "separate"`) through the real handler, ffmpeg and bundled model."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import config
import handler
from tests.support.media import RATE, b64, channels_file, speech
from utils.audio import decoding

LEFT = "seven four two"
RIGHT = "eight nine five"


def call_tracks() -> tuple[np.ndarray, np.ndarray]:
    """A two-party call: the left channel speaks first, the right one answers after it."""
    left, right = speech(LEFT), speech(RIGHT)
    gap = np.zeros(int(0.5 * RATE), np.float32)
    return (
        np.concatenate([left, gap, np.zeros_like(right)]),
        np.concatenate([np.zeros_like(left), gap, right]),
    )


def ask(path: Path, **fields: Any) -> dict[str, Any]:
    """The handler's answer for one file."""
    return handler.handler({"id": path.stem, "input": {"audio_base64": b64(path), **fields}})


def test_every_word_is_on_its_channel_and_the_channels_merge_in_time_order(
    tmp_path: Path, job_root: Path
) -> None:
    clip = channels_file(list(call_tracks()), tmp_path / "call.wav")
    result = ask(clip, channels="separate", timestamps=True)
    assert result["success"] is True, result
    words = result["timestamps"]["word"]
    assert [(w["word"], w["channel"]) for w in words] == [(w, 0) for w in LEFT.split()] + [
        (w, 1) for w in RIGHT.split()
    ]
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert [(s["text"], s["channel"]) for s in result["timestamps"]["segment"]] == [(LEFT, 0), (RIGHT, 1)]
    assert result["text"] == f"{LEFT} {RIGHT}"
    assert result["meta"]["channels"] == 2


def test_overlapping_channels_are_both_transcribed_whole(tmp_path: Path, job_root: Path) -> None:
    # Both parties at once: the mix would blur them; apart, each channel is clean.
    left, right = speech(LEFT), speech(RIGHT)
    length = max(left.size, right.size)
    tracks = [np.pad(track, (0, length - track.size)) for track in (left, right)]
    result = ask(channels_file(tracks, tmp_path / "both.flac"), channels="separate", timestamps=["word"])
    by_channel = {
        channel: " ".join(w["word"] for w in result["timestamps"]["word"] if w["channel"] == channel)
        for channel in (0, 1)
    }
    assert by_channel == {0: LEFT, 1: RIGHT}


def test_subtitles_show_the_channel_as_the_speaker(tmp_path: Path, job_root: Path) -> None:
    import srt
    import webvtt

    clip = channels_file(list(call_tracks()), tmp_path / "call.wav")
    result = ask(clip, channels="separate", output_format=["srt", "vtt"])
    assert [cue.content for cue in srt.parse(result["srt"])] == [f"ch0: {LEFT}", f"ch1: {RIGHT}"]
    vtt = tmp_path / "call.vtt"
    vtt.write_text(result["vtt"])
    assert [(cue.voice, cue.text) for cue in webvtt.read(str(vtt))] == [("ch0", LEFT), ("ch1", RIGHT)]


def test_a_silent_channel_yields_no_words(tmp_path: Path, job_root: Path) -> None:
    voice = speech(LEFT)
    clip = channels_file([voice, np.zeros_like(voice)], tmp_path / "one-sided.wav")
    result = ask(clip, channels="separate", timestamps=["word"])
    assert {w["channel"] for w in result["timestamps"]["word"]} == {0}
    assert result["text"] == LEFT


def test_mono_audio_is_one_channel(tmp_path: Path, job_root: Path) -> None:
    clip = channels_file([speech(LEFT)], tmp_path / "mono.wav")
    result = ask(clip, channels="separate", timestamps=["word"])
    assert [(w["word"], w["channel"]) for w in result["timestamps"]["word"]] == [(w, 0) for w in LEFT.split()]
    assert result["meta"]["channels"] == 1


def test_mix_is_the_default_and_carries_no_channels(tmp_path: Path, job_root: Path) -> None:
    clip = channels_file(list(call_tracks()), tmp_path / "call.wav")
    result = ask(clip, timestamps=["word"])
    assert result["text"] == f"{LEFT} {RIGHT}"
    assert all("channel" not in w for w in result["timestamps"]["word"])
    assert "channels" not in result["meta"]


def test_more_channels_than_the_limit_is_a_specific_error(
    tmp_path: Path, job_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_SEPARATE_CHANNELS", 2)
    voice = speech(LEFT)
    clip = channels_file([voice, voice, voice], tmp_path / "three.wav")
    result = ask(clip, channels="separate")
    assert result["success"] is False
    assert result["error_type"] == "too_many_channels"
    assert "at most 2 channels; this audio has 3" in result["error"]
    # The mix still takes it.
    assert ask(clip)["text"] == LEFT


def test_each_channel_counts_against_the_job_audio_limit(
    tmp_path: Path, job_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    left, right = call_tracks()
    seconds = left.size / RATE
    # Room for the mix of this call, not for its two channels.
    monkeypatch.setattr(config, "MAX_JOB_AUDIO_SECONDS", seconds * 1.5)
    monkeypatch.setattr(config, "DECODE_GUESS_MAX_SECONDS", 0.0)  # the headers' length is used
    clip = channels_file([left, right], tmp_path / "call.wav")
    assert decoding.probe(clip).channels == 2
    assert ask(clip)["success"] is True
    result = ask(clip, channels="separate")
    assert result["error_type"] == "audio_too_long", result


def test_decoding_apart_keeps_each_channel_as_it_was(tmp_path: Path) -> None:
    left, right = call_tracks()
    clip = channels_file([left, right], tmp_path / "call.wav")
    rows = decoding.decode(clip, separate=True)
    assert rows.shape == (2, left.size)
    np.testing.assert_allclose(rows[0], left, atol=1e-4)
    np.testing.assert_allclose(rows[1], right, atol=1e-4)


def test_the_merged_attention_is_the_plan_that_ran_and_none_only_without_a_model_call(
    tmp_path: Path, job_root: Path
) -> None:
    voice = speech(RIGHT)
    silent_first = channels_file([np.zeros_like(voice), voice], tmp_path / "silent-left.wav")
    result = ask(silent_first, channels="separate", vad=True, timestamps=["word"])
    assert result["text"] == RIGHT
    assert {word["channel"] for word in result["timestamps"]["word"]} == {1}
    assert result["meta"]["attention"] == "full"  # the second channel's call, not the first's none
    silence = np.zeros(RATE, np.float32)
    both_silent = channels_file([silence, silence], tmp_path / "silent.wav")
    assert ask(both_silent, channels="separate", vad=True)["meta"]["attention"] == "none"
