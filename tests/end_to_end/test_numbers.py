"""`numbers: "digits"` through the real handler, ffmpeg and the bundled models, whose speech is digits
read out in five languages: text, words, segments and subtitles all carry digits, every word time stays
inside the audio and in order, and a language without digit rules keeps its words and says so."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import srt

import config
import handler
from tests.support.media import PHRASES, b64, channels_file, phrase_clips, speech

MULTILINGUAL = config.BUNDLED_MULTILINGUAL_TEST_MODEL.stem
# Each language's digits as the phrase says them.
DIGITS = {
    "en": "7 4 2 9",
    "de": "5 2 9 1 7",
    "fr": "5 2 9 1 3",
    "es": "5 2 9 1 7",
    "it": "5 2 9 1 7",
}
pytestmark = pytest.mark.usefixtures("job_root")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each language's phrase as base64 FLAC."""
    return phrase_clips(tmp_path_factory.mktemp("numbers"))


def ask(job_input: dict[str, Any]) -> dict[str, Any]:
    """The handler's answer for one job."""
    return handler.handler({"id": "numbers", "input": job_input})


def assert_times_inside_and_in_order(words: list[dict[str, Any]], duration: float) -> None:
    """Every word starts after the one before, ends after it starts, and lies inside the audio."""
    for before, word in zip([None, *words], words, strict=False):
        assert 0 <= word["start"] <= word["end"] <= duration, word
        if before is not None:
            assert word["start"] >= before["start"], (before, word)


@pytest.mark.parametrize("code", list(PHRASES))
def test_each_language_comes_back_in_digits_with_its_times(
    code: str, clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    result = ask(
        {
            "audio_base64": clips[code],
            "model": MULTILINGUAL,
            "numbers": "digits",
            "timestamps": True,
            "confidence": True,
            "output_format": ["json", "srt"],
        }
    )
    assert result["success"] is True, result
    assert result["text"] == DIGITS[code]
    assert result["language"] == code  # told from the spoken words, before they became digits
    words = result["timestamps"]["word"]
    assert [word["word"] for word in words] == DIGITS[code].split()
    assert all(0 <= word["confidence"] <= 1 for word in words)
    assert_times_inside_and_in_order(words, result["duration"])
    assert " ".join(segment["text"] for segment in result["timestamps"]["segment"]) == DIGITS[code]
    assert " ".join(cue.content for cue in srt.parse(result["srt"])).split() == DIGITS[code].split()
    assert result["meta"]["numbers"] == "digits"
    assert "numbers_note" not in result["meta"]


def test_digits_keep_the_times_the_spoken_words_had(clips: dict[str, str]) -> None:
    spoken = ask({"audio_base64": clips["en"], "timestamps": ["word"]})
    digits = ask({"audio_base64": clips["en"], "timestamps": ["word"], "numbers": "digits"})
    times = [(word["start"], word["end"]) for word in spoken["timestamps"]["word"]]
    assert [(word["start"], word["end"]) for word in digits["timestamps"]["word"]] == times
    assert spoken["text"] == PHRASES["en"][1]
    assert "numbers" not in spoken["meta"]


def test_spoken_is_the_default_and_a_batch_converts_every_item(
    clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    audios = [{"audio_base64": clips[code]} for code in PHRASES]
    result = ask({"audios": audios, "model": MULTILINGUAL, "numbers": "digits"})
    assert [item["text"] for item in result["results"]] == list(DIGITS.values())
    plain = ask({"audios": audios, "model": MULTILINGUAL})
    assert [item["text"] for item in plain["results"]] == [words for _, words in PHRASES.values()]


def test_a_language_without_digit_rules_keeps_its_words_and_says_so(
    clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    # The caller says Polish: numbers are read in the given language, which text2num does not cover.
    result = ask({"audio_base64": clips["de"], "model": MULTILINGUAL, "numbers": "digits", "language": "pl"})
    assert result["success"] is True, result
    assert result["text"] == PHRASES["de"][1]
    assert result["meta"]["numbers"] == "spoken"
    assert "'pl'" in result["meta"]["numbers_note"]


def test_channels_kept_apart_come_back_in_digits(tmp_path: Path) -> None:
    # A call: one side, then the other.
    left, right = speech("seven four two"), speech("nine five")
    tracks = [np.concatenate([left, np.zeros_like(right)]), np.concatenate([np.zeros_like(left), right])]
    clip = channels_file(tracks, tmp_path / "call.flac")
    result = ask({"audio_base64": b64(clip), "channels": "separate", "numbers": "digits", "timestamps": True})
    assert result["success"] is True, result
    assert result["text"] == "7 4 2 9 5"
    words = result["timestamps"]["word"]
    assert [(word["word"], word["channel"]) for word in words] == [
        ("7", 0),
        ("4", 0),
        ("2", 0),
        ("9", 1),
        ("5", 1),
    ]
    assert_times_inside_and_in_order(words, result["duration"])


@pytest.mark.parametrize("value", ["Digits", "words", 1, True, None, ["digits"]])
def test_numbers_takes_spoken_or_digits_only(value: object, clips: dict[str, str]) -> None:
    result = ask({"audio_base64": clips["en"], "numbers": value})
    assert result["success"] is False
    assert result["error_type"] == "invalid_input"
    assert result["error"].startswith("numbers must be")
