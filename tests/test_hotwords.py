"""Hotwords through the real handler and the bundled model: boosting moves noisy speech toward a phrase,
leaves clean speech alone, and never leaks into other jobs' calls."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handler
from tests.support.media import b64, encode, speech
from utils.asr import decoding
from utils.asr.scheduler import scheduler
from utils.deadline import Deadline

WORDS = "four one seven two nine"


def noisy(level: float) -> np.ndarray:
    voice = speech(WORDS)
    return (voice + level * np.random.default_rng(0).standard_normal(voice.size)).astype(np.float32)


def transcribe(samples: np.ndarray, path: Path, **fields: Any) -> dict[str, Any]:
    clip = encode(samples, path.with_suffix(".flac"))
    return handler.handler({"id": path.stem, "input": {"audio_base64": b64(clip), **fields}})


def test_a_boosted_phrase_pulls_noisy_speech_toward_it_and_leaves_clean_speech_alone(
    tmp_path: Path, job_root: Path
) -> None:
    plain = transcribe(noisy(0.2), tmp_path / "plain")["text"]
    boosted = transcribe(noisy(0.2), tmp_path / "boosted", hotwords=["four one seven"])["text"]
    print(f"noisy: {plain!r}; boosted toward 'four one seven': {boosted!r}")
    assert "four one seven" not in plain
    assert "four one seven" in boosted
    assert transcribe(noisy(0.0), tmp_path / "clean", hotwords=["four one seven"])["text"] == WORDS
    # The decoder is plain again for the next job.
    assert transcribe(noisy(0.2), tmp_path / "after")["text"] == plain


def test_jobs_with_different_hotwords_never_share_a_call() -> None:
    audio = noisy(0.2)
    deadline = Deadline(120)
    boost = decoding.Boost(("four one seven",), 2.0)
    # Submitted together, so the scheduler could batch them; the boost keeps them apart.
    futures = [
        scheduler.submit(audio, frozenset(), deadline, lambda message: None, boost if i % 2 else None)
        for i in range(4)
    ]
    found = [future.result(timeout=120) for future in futures]
    assert [("four one seven" in t.text) for t in found] == [False, True, False, True]
    assert all(t.batch <= 2 for t in found)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hotwords": "four"}, "hotwords must be a list of phrases, got string"),
        ({"hotwords": []}, "hotwords must hold 1 to 100 phrases, got 0"),
        ({"hotwords": ["one"] * 101}, "hotwords must hold 1 to 100 phrases, got 101"),
        ({"hotwords": ["one", 7]}, "hotwords[1] must be a string, got number"),
        ({"hotwords": ["  "]}, "hotwords[0] is blank"),
        ({"hotwords": ["x" * 65]}, "hotwords[0] is 65 characters; at most 64"),
        ({"hotwords": ["one"], "hotword_weight": 0}, "hotword_weight must be a number from 0.1 to 10, got 0"),
        (
            {"hotwords": ["one"], "hotword_weight": "2"},
            "hotword_weight must be a number from 0.1 to 10, got string",
        ),
        ({"hotword_weight": 2}, "hotword_weight needs hotwords"),
    ],
)
def test_bad_hotwords_are_refused_by_name(fields: dict[str, Any], message: str) -> None:
    result = handler.handler({"id": "x", "input": {"audio_url": "s3://bucket/key", **fields}})
    assert result == {"success": False, "error": message, "error_type": "invalid_input"}


def test_a_phrase_the_model_cannot_spell_is_refused(tmp_path: Path, job_root: Path) -> None:
    result = transcribe(noisy(0.0), tmp_path / "spell", hotwords=["one", "Zürich"])
    assert result == {
        "success": False,
        "error": "hotwords[1] 'Zürich' has characters this model cannot write",
        "error_type": "invalid_input",
    }
    assert transcribe(noisy(0.0), tmp_path / "next", hotwords=["one"])["text"] == WORDS
