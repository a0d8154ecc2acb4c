"""The pure parts of the test-model trainer: which voices each language trains on and holds out, and the
digit words its utterances say."""

import random

import pytest

from tools.synth import DIGIT_WORDS_BY_LANGUAGE
from tools.train_test_model import LANGUAGE_VOICES, VARIANTS, main, make_utterance, voice_splits

LANGUAGES = ["en", "de", "fr", "es", "it"]


def test_each_language_holds_out_voices_it_never_trains_on() -> None:
    splits = voice_splits(LANGUAGES, seed=1234)
    assert [split.language for split in splits] == LANGUAGES
    for split in splits:
        assert set(split.train).isdisjoint(split.held_out)
        assert len(split.train) + len(split.held_out) == len(LANGUAGE_VOICES[split.language]) * len(VARIANTS)
        assert len(split.held_out) >= 5
        own = LANGUAGE_VOICES[split.language]
        assert all(voice.split("+")[0] in own for voice in split.train + split.held_out)


def test_the_split_follows_the_seed_and_english_alone_splits_as_it_does_among_others() -> None:
    assert voice_splits(LANGUAGES, 7) == voice_splits(LANGUAGES, 7)
    assert voice_splits(LANGUAGES, 7) != voice_splits(LANGUAGES, 8)
    # English draws first from the generator, so the English model's split is the same either way.
    assert voice_splits(["en"], 7)[0] == voice_splits(LANGUAGES, 7)[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_utterance_says_digit_words_of_its_language(language: str) -> None:
    voice = LANGUAGE_VOICES[language][0]
    utterance = make_utterance(random.Random(3), language, voice, 160)
    assert utterance.language == language
    assert set(utterance.text.split()) <= set(DIGIT_WORDS_BY_LANGUAGE[language])
    assert utterance.samples.size > 0
    assert float(abs(utterance.samples).max()) <= 1.0


def test_an_unknown_language_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", "/nonexistent/model.nemo", "--languages", "en,xx"]) == 2
    assert "--languages: unknown ['xx']" in capsys.readouterr().err
