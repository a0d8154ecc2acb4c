"""Every time an item returns lies within [0, duration], whichever path made it: one model call, windows,
channels kept apart, the diarizer, vad. The model's last frame can end past the audio (a word of a
0.3 s clip ended at 0.32 s, one of 5 s of noise at 5.04 s)."""

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import config
import handler
from tests.support.media import b64, channels_file, speech

PATHS: dict[str, dict[str, Any]] = {
    "plain": {},
    "windows": {},  # the plan forced to windows below
    "channels": {"channels": "separate"},
    "diarizer": {"diarize": True},
    "vad": {"vad": True},
    "channels-vad-diarizer": {"channels": "separate", "vad": True, "diarize": True},
}
SRT_TIME = re.compile(r"(\d\d):(\d\d):(\d\d),(\d\d\d)")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bounds")
    voice = speech("seven")
    onset = int(np.flatnonzero(np.abs(voice) > 0.01)[0])
    noise = np.random.default_rng(0).normal(0, 0.3, (2, 5 * config.SAMPLE_RATE)).astype(np.float32)
    return {
        "short": channels_file([voice[onset : onset + int(0.3 * config.SAMPLE_RATE)]], folder / "short.wav"),
        "noise": channels_file(list(noise), folder / "noise.wav"),
    }


def srt_seconds(srt: str) -> list[float]:
    return [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in SRT_TIME.findall(srt)]


@pytest.mark.parametrize("clip", ["short", "noise"])
@pytest.mark.parametrize("path", PATHS)
def test_no_time_lies_past_the_audio(
    clips: dict[str, Path], clip: str, path: str, job_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "windows":
        monkeypatch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 0.1)
        monkeypatch.setattr(config, "LOCAL_ATTENTION_MAX_SECONDS", 0.2)
        monkeypatch.setattr(config, "WINDOW_SECONDS", 4.0)
    job = {"audio_base64": b64(clips[clip]), "timestamps": True, "output_format": ["json", "srt", "vtt"]}
    result = handler.handler({"id": path, "input": {**job, **PATHS[path]}})
    assert result["success"], result
    duration = result["duration"]
    assert duration == pytest.approx(0.3 if clip == "short" else 5.0, abs=0.01)
    times = [
        moment
        for items in result["timestamps"].values()
        for item in items
        for moment in (item["start"], item["end"])
    ]
    times += srt_seconds(result["srt"]) + srt_seconds(result["vtt"].replace(".", ","))
    assert all(0 <= moment <= duration for moment in times), (duration, max(times, default=None))
    for kind in result["timestamps"].values():
        assert all(item["start"] <= item["end"] for item in kind)
    for speaker in result.get("speakers", []):
        assert 0 <= speaker["seconds"] <= duration
    if path == "windows" and clip == "noise":
        assert result["meta"]["attention"] == "windowed"
