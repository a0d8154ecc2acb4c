"""Word confidence through the real handler and the bundled model, on clean and noisy speech."""

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import config
import handler
from tests.support.media import b64, encode, speech
from utils.asr import transcribe
from utils.asr.records import CONFIDENCE

WORDS = "four one seven two nine three"


def noisy(level: float, seed: int = 0) -> np.ndarray:
    voice = speech(WORDS)
    rng = np.random.default_rng(seed)
    return (voice + level * rng.standard_normal(voice.size)).astype(np.float32)


def ask(samples: np.ndarray, path: Path, **fields: Any) -> dict[str, Any]:
    clip = encode(samples, path.with_suffix(".flac"))
    return handler.handler({"id": path.stem, "input": {"audio_base64": b64(clip), **fields}})


def test_words_segments_and_items_carry_confidence(tmp_path: Path, job_root: Path) -> None:
    result = ask(noisy(0.0), tmp_path / "clean", confidence=True, timestamps=True)
    assert result["success"] is True, result
    words = result["timestamps"]["word"]
    assert [w["word"] for w in words] == WORDS.split()
    assert all(0.0 <= w["confidence"] <= 1.0 for w in words)
    [segment] = result["timestamps"]["segment"]
    assert segment["confidence"] == pytest.approx(np.mean([w["confidence"] for w in words]), abs=0.002)
    assert result["confidence"] == pytest.approx(segment["confidence"], abs=0.002)


def test_confidence_changes_no_word_and_is_absent_when_not_asked(tmp_path: Path, job_root: Path) -> None:
    plain = ask(noisy(0.1), tmp_path / "plain", timestamps=["word"])
    scored = ask(noisy(0.1), tmp_path / "scored", timestamps=["word"], confidence=True)
    assert [(w["word"], w["start"], w["end"]) for w in scored["timestamps"]["word"]] == [
        (w["word"], w["start"], w["end"]) for w in plain["timestamps"]["word"]
    ]
    assert "confidence" not in plain
    assert all("confidence" not in w for w in plain["timestamps"]["word"])
    # The decoder is back to plain for the next call.
    again = ask(noisy(0.1), tmp_path / "again", timestamps=["word"])
    assert again["timestamps"] == plain["timestamps"]


def test_noisy_speech_scores_clearly_lower_and_falls_along_a_noise_ladder(
    tmp_path: Path, job_root: Path
) -> None:
    ladder = [0.0, 0.1, 0.2, 0.3]  # noise std; FLAC clips beyond about 0.3
    means = [
        ask(noisy(level), tmp_path / f"noise-{i}", confidence=True)["confidence"]
        for i, level in enumerate(ladder)
    ]
    print(f"mean confidence by noise level {ladder}: {means}")
    assert means[0] - means[-1] > 0.15
    assert all(later <= earlier + 0.02 for earlier, later in itertools.pairwise(means))


def test_a_word_count_the_confidences_disagree_with_keeps_the_words() -> None:
    hypothesis = SimpleNamespace(
        timestamp={
            "word": [{"word": "four", "start": 0.1, "end": 0.3}, {"word": "one", "start": 0.4, "end": 0.6}]
        },
        word_confidence=[0.9],
    )
    found = transcribe.timestamps_of(hypothesis, frozenset({"word", "segment", CONFIDENCE}), 0.0)
    assert [(w.word, w.confidence) for w in found.word] == [("four", None), ("one", None)]
    assert found.segment[0].confidence is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"confidence": "yes"}, "confidence must be true or false, got string"),
        ({"confidence": 1}, "confidence must be true or false, got number"),
        (
            {"confidence": True, "output_format": "text"},
            'confidence is returned in the "json" output format; add "json" to output_format',
        ),
    ],
)
def test_bad_confidence_values_are_refused(fields: dict[str, Any], message: str) -> None:
    result = handler.handler({"id": "x", "input": {"audio_url": "s3://bucket/key", **fields}})
    assert result == {"success": False, "error": message, "error_type": "invalid_input"}


def test_windowed_items_carry_confidence_across_their_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 2.0)
    monkeypatch.setattr(config, "LOCAL_ATTENTION_MAX_SECONDS", 4.0)
    monkeypatch.setattr(config, "WINDOW_SECONDS", 4.0)
    monkeypatch.setattr(config, "WINDOW_OVERLAP_SECONDS", 1.5)
    long = np.concatenate([speech("four one seven"), speech("two nine three"), speech("five six eight")])
    result = ask(long, tmp_path / "windowed", confidence=True, timestamps=True)
    assert result["meta"]["attention"] == "windowed", result["meta"]
    words = result["timestamps"]["word"]
    assert [w["word"] for w in words] == [
        "four",
        "one",
        "seven",
        "two",
        "nine",
        "three",
        "five",
        "six",
        "eight",
    ]
    assert all(0.0 <= w["confidence"] <= 1.0 for w in words)
    assert all("confidence" in s for s in result["timestamps"]["segment"])
