"""Speech in five languages through the real handler, ffmpeg and the bundled multilingual model, served
beside the English one: each item's language, the `language` input, a channel in another language, and
jobs for both models at once."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import config
import handler
from tests.support.media import PHRASES, RATE, b64, channels_file, phrase_clips, speech
from tools.synth import DIGIT_WORDS_BY_LANGUAGE

MULTILINGUAL = config.BUNDLED_MULTILINGUAL_TEST_MODEL.stem
# Every test serves both bundled models (`two_models`) and leaves no job files behind.
pytestmark = pytest.mark.usefixtures("job_root")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each language's phrase as base64 FLAC."""
    return phrase_clips(tmp_path_factory.mktemp("languages"))


def ask(job_input: dict[str, Any]) -> dict[str, Any]:
    """The handler's answer for one job."""
    return handler.handler({"id": "languages", "input": job_input})


@pytest.mark.parametrize("code", list(PHRASES))
def test_each_language_is_transcribed_and_named(
    code: str, clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    result = ask({"audio_base64": clips[code], "model": MULTILINGUAL, "language": code})
    assert result["success"] is True, result
    assert result["text"] == PHRASES[code][1]
    assert result["language"] == code
    assert 0.9 <= result["language_confidence"] <= 1
    assert result["language_mismatch"] is False
    assert result["meta"]["model"] == Path(two_models[1]).stem


def test_a_batch_names_each_items_language_and_flags_those_not_expected(
    clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    audios = [{"audio_base64": clips[code]} for code in PHRASES]
    result = ask({"audios": audios, "model": MULTILINGUAL, "language": "de"})
    items = result["results"]
    assert [item["text"] for item in items] == [words for _, words in PHRASES.values()]
    assert [item["language"] for item in items] == list(PHRASES)
    assert [item["language_mismatch"] for item in items] == [code != "de" for code in PHRASES]


def test_a_channel_in_another_language_has_segments_that_say_so(
    tmp_path: Path, two_models: tuple[str, str]
) -> None:
    # A call between Germany and Italy: the Italian side's segments carry their own language.
    (de_voice, de_words), (it_voice, it_words) = PHRASES["de"], PHRASES["it"]
    left, right = speech(de_words, de_voice), speech(it_words, it_voice)
    gap = np.zeros(int(0.5 * RATE), np.float32)
    tracks = [
        np.concatenate([left, gap, np.zeros_like(right)]),
        np.concatenate([np.zeros_like(left), gap, right]),
    ]
    clip = channels_file(tracks, tmp_path / "call.flac")
    result = ask(
        {"audio_base64": b64(clip), "model": MULTILINGUAL, "channels": "separate", "timestamps": ["segment"]}
    )
    assert result["success"] is True, result
    assert result["language"] == "de"
    segments = result["timestamps"]["segment"]
    assert [(s["channel"], s.get("language")) for s in segments] == [(0, None), (1, "it")]
    assert segments[0]["text"] == de_words
    # After seconds of silence the tiny model can drop a word; what matters here is that it is Italian.
    assert set(segments[1]["text"].split()) <= set(DIGIT_WORDS_BY_LANGUAGE["it"])


def test_the_english_model_beside_it_knows_only_english(
    clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    english = ask({"audio_base64": clips["en"]})
    german = ask({"audio_base64": clips["de"]})
    assert english["text"] == PHRASES["en"][1]
    assert german["text"] != PHRASES["de"][1]
    assert english["meta"]["model"] == german["meta"]["model"] == Path(two_models[0]).stem


def test_jobs_for_two_models_at_once_each_get_their_own(
    clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    jobs = [
        ({"audio_base64": clips[code], "model": MULTILINGUAL}, Path(two_models[1]).stem, PHRASES[code][1])
        for code in ("de", "fr", "es", "it")
    ] + [({"audio_base64": clips["en"]}, Path(two_models[0]).stem, PHRASES["en"][1])] * 4
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(ask, [job for job, _, _ in jobs]))
    assert [(r["meta"]["model"], r["text"]) for r in results] == [(m, words) for _, m, words in jobs]


def test_a_job_expecting_a_language_the_detector_does_not_know_is_never_a_mismatch(
    clips: dict[str, str], two_models: tuple[str, str]
) -> None:
    # Maltese: the model transcribes it, the detector would name its text as another language, confidently.
    result = ask({"audio_base64": clips["it"], "model": MULTILINGUAL, "language": "mt", "timestamps": True})
    assert result["success"] is True, result
    assert (result["language"], result["language_confidence"], result["language_mismatch"]) == (
        None,
        None,
        False,
    )
    assert all("language" not in segment for segment in result["timestamps"]["segment"])
