"""The bundled test models really transcribe speech: the English digits model and the multilingual one
(the digit words of English, German, French, Spanish and Italian).

Utterances are synthesized here, fresh, with voice+variant pairs and speeds that training never used
(the cards list them), loaded through the worker's own loader, and checked word for word.
"""

import json
import random
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nemo.collections.asr.metrics.wer import word_error_rate

import config
from tools.synth import DIGIT_WORDS, DIGIT_WORDS_BY_LANGUAGE, SAMPLE_RATE, synthesize, trim_silence, write_wav
from utils.asr.model import load_model

CARD_PATH = config.BUNDLED_TEST_MODEL.with_suffix(".json")
MULTILINGUAL_CARD_PATH = config.BUNDLED_MULTILINGUAL_TEST_MODEL.with_suffix(".json")
MAX_NEMO_BYTES = 5 * 1024 * 1024
MAX_LANGUAGE_WER = 0.05
UTTERANCES_PER_LANGUAGE = 20
# Seeds of this file's own utterances; the trainer's corpus came from the card's seed.
UTTERANCE_SEED = 20240611
TIMESTAMP_SEED = 777


@pytest.fixture(scope="module")
def card() -> dict[str, Any]:
    """The model card written by tools/train_test_model.py."""
    return json.loads(CARD_PATH.read_text())


@pytest.fixture(scope="module")
def model() -> Any:
    """The bundled model, loaded the way the worker loads PARAKEET_MODEL."""
    return load_model(str(config.BUNDLED_TEST_MODEL))


@pytest.fixture(scope="module")
def multilingual_card() -> dict[str, Any]:
    """The multilingual model's card."""
    return json.loads(MULTILINGUAL_CARD_PATH.read_text())


@pytest.fixture(scope="module")
def multilingual_model() -> Any:
    """The multilingual model, loaded the way the worker loads any served model."""
    return load_model(str(config.BUNDLED_MULTILINGUAL_TEST_MODEL))


def _random_words(rng: random.Random) -> list[str]:
    """Returns 1 to 7 random digit words."""
    return [rng.choice(DIGIT_WORDS) for _ in range(rng.randint(1, 7))]


def test_card_reports_the_model_and_its_quality(card: dict[str, Any]) -> None:
    assert config.BUNDLED_TEST_MODEL.stat().st_size <= MAX_NEMO_BYTES
    assert card["nemo_bytes"] == config.BUNDLED_TEST_MODEL.stat().st_size
    assert card["held_out_wer"] <= 0.02
    assert card["vocabulary"]["words"] == list(DIGIT_WORDS)
    assert card["command"].startswith("python -m tools.train_test_model")
    held_out, train = card["corpus"]["held_out"], card["corpus"]["train"]
    assert not set(held_out["voices"]) & set(train["voices"])
    assert not set(held_out["speeds"]) & set(train["speeds"])


def test_the_multilingual_card_lists_five_model_languages_each_within_five_percent_wer(
    multilingual_card: dict[str, Any],
) -> None:
    card, size = multilingual_card, config.BUNDLED_MULTILINGUAL_TEST_MODEL.stat().st_size
    assert card["nemo_bytes"] == size <= MAX_NEMO_BYTES
    languages = card["languages"]
    assert len(languages) >= 5
    assert set(languages) <= set(config.MODEL_LANGUAGES)
    held_out, train = card["corpus"]["held_out"], card["corpus"]["train"]
    for code, entry in languages.items():
        assert entry["words"] == list(DIGIT_WORDS_BY_LANGUAGE[code])
        assert entry["held_out_wer"] <= MAX_LANGUAGE_WER
        assert len(entry["held_out_voices"]) >= 5  # several voices, none of them trained on
        assert set(entry["held_out_voices"]) <= set(held_out["voices"])
    assert not set(held_out["voices"]) & set(train["voices"])
    assert not set(held_out["speeds"]) & set(train["speeds"])


@pytest.mark.parametrize("language", ["en", "de", "fr", "es", "it"])
def test_the_multilingual_model_transcribes_unseen_voices_of_each_language(
    multilingual_model: Any, multilingual_card: dict[str, Any], language: str
) -> None:
    rng = random.Random(f"{UTTERANCE_SEED}-{language}")
    voices = multilingual_card["languages"][language]["held_out_voices"]
    speeds = multilingual_card["corpus"]["held_out"]["speeds"]
    vocabulary = DIGIT_WORDS_BY_LANGUAGE[language]
    expected, audio = [], []
    # Enough words (about 90) that the bound measures a rate rather than one unlucky word.
    for voice in [voices[number % len(voices)] for number in range(UTTERANCES_PER_LANGUAGE)]:
        words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 6)))
        expected.append(words)
        audio.append(synthesize(words, voice, rng.choice(speeds), rng.randint(30, 70)))

    hypotheses = multilingual_model.transcribe(audio, batch_size=len(audio), verbose=False)

    texts = [hypothesis.text.strip() for hypothesis in hypotheses]
    assert word_error_rate(texts, expected) <= MAX_LANGUAGE_WER, list(zip(expected, texts, strict=True))


@pytest.mark.parametrize("loaded", ["model", "multilingual_model"])
def test_model_is_a_parakeet_tdt_model(loaded: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(loaded)  # the module's own loaded models, not a second restore
    cfg = model.cfg
    assert type(model).__name__ == "EncDecRNNTBPEModel"
    assert cfg.loss.loss_name == "tdt"
    assert list(cfg.loss.tdt_kwargs.durations) == [0, 1, 2, 3, 4]
    assert (cfg.encoder.subsampling, cfg.encoder.subsampling_factor) == ("dw_striding", 8)
    assert cfg.encoder.self_attention_model == "rel_pos"
    assert (cfg.decoding.strategy, cfg.decoding.model_type) == ("greedy_batch", "tdt")
    assert cfg.tokenizer.type == "bpe"


def test_transcribes_unseen_voices_and_speeds_exactly(model: Any, card: dict[str, Any]) -> None:
    rng = random.Random(UTTERANCE_SEED)
    voices, speeds = card["corpus"]["held_out"]["voices"], card["corpus"]["held_out"]["speeds"]
    expected, audio = [], []
    for voice in rng.sample(voices, 10):
        words = _random_words(rng)
        expected.append(" ".join(words))
        audio.append(synthesize(" ".join(words), voice, rng.choice(speeds), rng.randint(30, 70)))

    hypotheses = model.transcribe(audio, batch_size=len(audio), verbose=False)

    assert [hypothesis.text.strip() for hypothesis in hypotheses] == expected


def test_word_timestamps_overlap_where_each_word_is_spoken(model: Any, card: dict[str, Any]) -> None:
    # Single-word clips joined by pauses: the true span of every word is known to the sample.
    rng = random.Random(TIMESTAMP_SEED)
    voices, speeds = card["corpus"]["held_out"]["voices"], card["corpus"]["held_out"]["speeds"]
    cases = []
    for voice in rng.sample(voices, 4):
        speed, pitch = rng.choice(speeds), rng.randint(30, 70)
        words = [rng.choice(DIGIT_WORDS) for _ in range(5)]
        pieces, spans, cursor = [], [], 0
        for word in words:
            gap = np.zeros(int(rng.uniform(0.2, 0.5) * SAMPLE_RATE), np.float32)
            clip = trim_silence(synthesize(word, voice, speed, pitch))
            pieces += [gap, clip]
            spans.append(((cursor + gap.size) / SAMPLE_RATE, (cursor + gap.size + clip.size) / SAMPLE_RATE))
            cursor += gap.size + clip.size
        pieces.append(np.zeros(int(0.3 * SAMPLE_RATE), np.float32))
        cases.append((words, spans, np.concatenate(pieces)))

    hypotheses = model.transcribe([audio for _, _, audio in cases], batch_size=len(cases), timestamps=True)

    for (words, spans, audio), hypothesis in zip(cases, hypotheses, strict=True):
        stamps = hypothesis.timestamp["word"]
        assert [stamp["word"] for stamp in stamps] == words
        duration = audio.size / SAMPLE_RATE
        starts, ends = [stamp["start"] for stamp in stamps], [stamp["end"] for stamp in stamps]
        assert starts == sorted(starts)
        assert ends == sorted(ends)
        for stamp, (spoken_start, spoken_end) in zip(stamps, spans, strict=True):
            assert 0 <= stamp["start"] <= stamp["end"] <= duration
            assert stamp["start"] < spoken_end, (stamp, spoken_start, spoken_end)
            assert stamp["end"] > spoken_start, (stamp, spoken_start, spoken_end)


def test_wav_written_by_synth_round_trips_and_transcribes(model: Any, tmp_path: Path) -> None:
    samples = synthesize("four zero nine", "en-us+m3", 175, 45)
    write_wav(tmp_path / "digits.wav", samples)

    with wave.open(str(tmp_path / "digits.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    read_back = pcm.astype(np.float32) / 32767.0
    assert np.abs(read_back - samples).max() < 1e-4
    assert model.transcribe([read_back], verbose=False)[0].text.strip() == "four zero nine"


def test_synthesize_refuses_an_unknown_voice() -> None:
    with pytest.raises(RuntimeError, match="nonexistentvoice"):
        synthesize("one", "nonexistentvoice")
