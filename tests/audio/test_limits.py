"""Headers no recording has are refused from the headers alone (`utils.audio.limits`)."""

import pytest

import config
from utils.audio import limits


def test_real_recordings_pass() -> None:
    assert limits.refusal(3.0, 8000, 24_000) is None  # telephony: 8 kHz
    assert limits.refusal(3600.0, 16_000, 20_466) is None  # an hour of FLAC silence, largest frames
    assert limits.refusal(None, None, 10) is None  # headers that tell nothing


def test_a_rate_below_the_floor_is_refused_by_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.refusal(1.0, 7999, 10**6) == (
        "the audio's sample rate is 7999 Hz; the lowest accepted is 8000 Hz (MIN_SAMPLE_RATE)"
    )
    monkeypatch.setattr(config, "MIN_SAMPLE_RATE", 4000)
    assert limits.refusal(1.0, 7999, 10**6) is None


def test_a_length_out_of_proportion_to_the_size_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.refusal(2000.0, 8000, 4044) == (
        "the file declares 2000 s of audio in 4044 bytes, fewer than 4 bytes a second "
        "(MIN_AUDIO_BYTES_PER_SECOND): no real recording is that small"
    )
    monkeypatch.setattr(config, "MIN_AUDIO_BYTES_PER_SECOND", 0.0)
    assert limits.refusal(2000.0, 8000, 4044) is None
