"""Per-call decoder options (`utils.asr.decoding`) through the real handler and the bundled model: word
confidence on clean and noisy speech, and hotwords that move noisy speech toward a phrase without
leaking into other jobs' calls."""

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import config
import handler
from tests.support.logprobs import reference_logprobs
from tests.support.media import b64, encode, speech
from utils.asr import decoding, transcribe
from utils.asr import model as asr_model
from utils.asr.records import CONFIDENCE, LOGPROBS
from utils.asr.scheduler import scheduler
from utils.job.deadline import Deadline

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


BOOSTED_WORDS = "four one seven two nine"


def noisy_digits(level: float) -> np.ndarray:
    voice = speech(BOOSTED_WORDS)
    return (voice + level * np.random.default_rng(0).standard_normal(voice.size)).astype(np.float32)


def hotword_job(samples: np.ndarray, path: Path, **fields: Any) -> dict[str, Any]:
    clip = encode(samples, path.with_suffix(".flac"))
    return handler.handler({"id": path.stem, "input": {"audio_base64": b64(clip), **fields}})


def test_a_boosted_phrase_pulls_noisy_speech_toward_it_and_leaves_clean_speech_alone(
    tmp_path: Path, job_root: Path
) -> None:
    plain = hotword_job(noisy_digits(0.2), tmp_path / "plain")["text"]
    boosted = hotword_job(noisy_digits(0.2), tmp_path / "boosted", hotwords=["four one seven"])["text"]
    print(f"noisy: {plain!r}; boosted toward 'four one seven': {boosted!r}")
    assert "four one seven" not in plain
    assert "four one seven" in boosted
    assert (
        hotword_job(noisy_digits(0.0), tmp_path / "clean", hotwords=["four one seven"])["text"]
        == BOOSTED_WORDS
    )
    # The decoder is plain again for the next job.
    assert hotword_job(noisy_digits(0.2), tmp_path / "after")["text"] == plain


def test_jobs_with_different_hotwords_never_share_a_call() -> None:
    audio = noisy_digits(0.2)
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
    result = hotword_job(noisy_digits(0.0), tmp_path / "spell", hotwords=["one", "Zürich"])
    assert result == {
        "success": False,
        "error": "hotwords[1] 'Zürich' has characters this model cannot write",
        "error_type": "invalid_input",
    }
    assert hotword_job(noisy_digits(0.0), tmp_path / "next", hotwords=["one"])["text"] == BOOSTED_WORDS


class BuildCounter:
    """Counts the real model's decoder builds (`change_decoding_strategy`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.model = asr_model.get_model()
        self.real = self.model.change_decoding_strategy
        self.builds = 0
        monkeypatch.setattr(self.model, "change_decoding_strategy", self)

    def __call__(self, cfg: Any, verbose: bool = True) -> None:
        self.builds += 1
        self.real(cfg, verbose=verbose)


def test_each_option_set_builds_its_decoder_once_and_the_models_own_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    counter = BuildCounter(monkeypatch)
    own = counter.model.decoding
    clip = noisy(0.0)
    first = ask(clip, tmp_path / "first", hotwords=["four one"], hotword_weight=1.7, confidence=True)
    for index in range(3):
        again = ask(
            clip, tmp_path / f"again{index}", hotwords=["four one"], hotword_weight=1.7, confidence=True
        )
        assert again["text"] == first["text"]
        assert again["confidence"] == first["confidence"]
        assert counter.model.decoding is own
    assert counter.builds == 1


def test_kept_decoders_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path) -> None:
    monkeypatch.setattr(config, "DECODER_SETUPS_KEPT", 2)
    counter = BuildCounter(monkeypatch)
    phrases = [["nine three"], ["seven two"], ["one four"]]
    for round_ in range(2):
        for index, hotwords in enumerate(phrases):
            ask(noisy(0.0), tmp_path / f"r{round_}-{index}", hotwords=hotwords, hotword_weight=1.3)
    assert counter.builds == 6  # three lists through two places: each is dropped before it comes back


# --- Token log-probabilities (OpenAI's avg_logprob) ---


@pytest.mark.parametrize("level", [0.0, 0.2])
def test_token_logprobs_are_the_log_softmax_of_the_emitted_labels(level: float, job_root: Path) -> None:
    samples = noisy(level)
    kinds = frozenset({"word", LOGPROBS})
    (hypothesis,) = transcribe.run_call([samples], "full", kinds)
    tokens, expected = reference_logprobs(samples)
    assert [int(token) for token in hypothesis.y_sequence] == tokens
    assert decoding.token_logprobs(hypothesis) == pytest.approx(expected, abs=1e-5)
    # With word confidence asked too, a second decoder scores the same tokens the same way.
    (both,) = transcribe.run_call([samples], "full", kinds | {CONFIDENCE})
    assert decoding.token_logprobs(both) == pytest.approx(expected, abs=1e-5)
    assert len(both.word_confidence) == len(both.timestamp["word"])
    # The model's own decoder is back, without log-probabilities.
    (plain,) = transcribe.run_call([samples], "full", frozenset({"word"}))
    assert decoding.token_logprobs(plain) is None


def test_noisy_speech_has_lower_log_probabilities(job_root: Path) -> None:
    def mean(level: float) -> float:
        (hypothesis,) = transcribe.run_call([noisy(level)], "full", frozenset({"word", LOGPROBS}))
        return float(np.mean(decoding.token_logprobs(hypothesis)))

    assert mean(0.3) < mean(0.0) <= 0.0


def test_windowed_items_carry_tokens_across_their_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "FULL_ATTENTION_MAX_SECONDS", 2.0)
    monkeypatch.setattr(config, "LOCAL_ATTENTION_MAX_SECONDS", 4.0)
    monkeypatch.setattr(config, "WINDOW_SECONDS", 4.0)
    monkeypatch.setattr(config, "WINDOW_OVERLAP_SECONDS", 1.5)
    long = np.concatenate([speech("four one seven"), speech("two nine three"), speech("five six eight")])
    kinds = frozenset({"word", "segment", LOGPROBS})
    transcript = scheduler.submit(long, kinds, Deadline(120), lambda message: None).result()
    assert transcript.attention == "windowed"
    tokenizer = asr_model.loaded().model.tokenizer
    for word in transcript.timestamps.word:
        assert tokenizer.ids_to_text(list(word.tokens)) == word.word
        assert len(word.logprobs) == len(word.tokens)
    for segment in transcript.timestamps.segment:
        assert tokenizer.ids_to_text(list(segment.tokens)) == segment.text
        assert segment.avg_logprob <= 0.0
