"""A session's settings after updates: only the fields sent change, the other doors' rules apply (model,
language, prompt, keywords), and a refused update changes nothing."""

import json
from typing import Any

import pytest

import config
from utils.realtime import protocol, settings
from utils.realtime.protocol import EventError


def applied(current: settings.SessionSettings, audio_input: dict[str, Any], **session: Any) -> Any:
    event = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}
    event["session"].update(session)
    parsed = protocol.parse_event(json.dumps(event))
    return settings.apply(current, parsed.session)


def refused(current: settings.SessionSettings, audio_input: dict[str, Any], **session: Any) -> EventError:
    with pytest.raises(EventError) as error:
        applied(current, audio_input, **session)
    return error.value


def test_defaults_are_openai_s() -> None:
    start = settings.default_settings()
    assert (start.format_type, start.rate) == ("audio/pcm", 24000)
    assert start.turn_detection == settings.Vad("server_vad", 0.5, 300, 500)
    assert start.transcription.model == str(config.BUNDLED_TEST_MODEL)
    assert start.transcription.delay == config.LIVE_DEFAULT_DELAY
    assert (start.transcription.language, start.transcription.keywords) == (None, ())


def test_only_the_fields_sent_change() -> None:
    first = applied(settings.default_settings(), {"transcription": {"language": "en", "keywords": ["seven"]}})
    second = applied(first, {"transcription": {"delay": "high"}, "turn_detection": {"type": "server_vad"}})
    assert second.transcription.language == "en"
    assert second.transcription.keywords == ("seven",)
    assert second.transcription.delay == "high"
    third = applied(second, {"turn_detection": {"type": "server_vad", "threshold": 0.7}})
    fourth = applied(third, {"turn_detection": {"type": "server_vad", "silence_duration_ms": 900}})
    assert (fourth.turn_detection.threshold, fourth.turn_detection.silence_duration_ms) == (0.7, 900)
    cleared = applied(fourth, {"transcription": {"language": None, "keywords": []}, "turn_detection": None})
    assert (cleared.transcription.language, cleared.transcription.keywords) == (None, ())
    assert cleared.turn_detection is None
    assert applied(cleared, {"format": {"type": "audio/pcma"}}).rate == 8000


@pytest.mark.parametrize(("eagerness", "silence"), sorted(config.REALTIME_EAGERNESS_SILENCE_MS.items()))
def test_semantic_vad_takes_its_silence_from_eagerness(eagerness: str, silence: int) -> None:
    vad = applied(
        settings.default_settings(), {"turn_detection": {"type": "semantic_vad", "eagerness": eagerness}}
    ).turn_detection
    assert (vad.type, vad.eagerness, vad.silence_duration_ms) == ("semantic_vad", eagerness, silence)
    assert (vad.threshold, vad.prefix_padding_ms) == (0.5, 300)


def test_with_one_model_served_any_model_name_is_taken() -> None:
    chosen = applied(settings.default_settings(), {"transcription": {"model": "gpt-4o-transcribe"}})
    assert chosen.transcription.model == str(config.BUNDLED_TEST_MODEL)


def test_with_several_models_the_name_picks_one(two_models: tuple[str, str]) -> None:
    _, multilingual = two_models
    start = settings.default_settings()
    picked = applied(start, {"transcription": {"model": "parakeet-tdt-digits-multilingual"}})
    assert picked.transcription.model == multilingual
    error = refused(start, {"transcription": {"model": "whisper-1"}})
    assert error.param == "session.audio.input.transcription.model"
    assert "not served here" in str(error)


def test_language_is_checked_against_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    english_only = {str(config.BUNDLED_TEST_MODEL): ("en",)}
    monkeypatch.setattr(config, "OTHER_MODEL_LANGUAGES", english_only)
    start = settings.default_settings()
    assert applied(start, {"transcription": {"language": "EN-us"}}).transcription.language == "en"
    error = refused(start, {"transcription": {"language": "de"}})
    assert error.param == "session.audio.input.transcription.language"
    assert str(error).startswith("session.audio.input.transcription.language 'de' is not one")
    plural = refused(start, {"transcription": {"languages": ["en", "fr"]}})
    assert plural.param == "session.audio.input.transcription.languages"


@pytest.mark.parametrize(
    ("audio_input", "session", "param", "fragment"),
    [
        ({"transcription": {"prompt": "digits"}}, {}, "session.audio.input.transcription.prompt", "hotwords"),
        (
            {"transcription": {"keywords": ["a"] * 1000}},
            {},
            "session.audio.input.transcription.keywords",
            "1 to",
        ),
        (
            {"transcription": {"keywords": ["  "]}},
            {},
            "session.audio.input.transcription.keywords[0]",
            "blank",
        ),
        ({"transcription": None}, {}, "session.audio.input.transcription", "always transcribes"),
        ({"format": None}, {}, "session.audio.input.format", "cannot be null"),
        ({}, {"include": ["item.input_audio_transcription.logprobs"]}, "session.include[0]", "confidence"),
    ],
)
def test_refusals_name_the_field(audio_input: dict, session: dict, param: str, fragment: str) -> None:
    error = refused(settings.default_settings(), audio_input, **session)
    assert error.param == param
    assert str(error).startswith(param.split("[")[0])
    assert fragment in str(error)


def test_an_empty_prompt_is_taken() -> None:
    assert applied(settings.default_settings(), {"transcription": {"prompt": " "}}) is not None


def test_the_older_shape_means_the_same() -> None:
    beta = protocol.parse_event(
        json.dumps(
            {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_format": "g711_alaw",
                    "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "low", "threshold": 0.2},
                    "input_audio_noise_reduction": {"type": "far_field"},
                },
            }
        )
    )
    result = settings.apply(settings.default_settings(), settings.from_beta(beta.session))
    assert result.format_type == "audio/pcma"
    assert result.transcription.language == "en"
    assert (result.turn_detection.type, result.turn_detection.eagerness) == ("semantic_vad", "low")
    assert result.noise_reduction.type == "far_field"
    off = protocol.parse_event(
        json.dumps({"type": "transcription_session.update", "session": {"turn_detection": None}})
    )
    assert settings.apply(result, settings.from_beta(off.session)).turn_detection is None


def test_refusals_of_the_older_shape_name_its_fields() -> None:
    beta = protocol.parse_event(
        json.dumps(
            {
                "type": "transcription_session.update",
                "session": {"input_audio_transcription": {"prompt": "digits please"}},
            }
        )
    )
    with pytest.raises(EventError) as refused:
        settings.apply_beta(settings.default_settings(), beta.session)
    assert refused.value.param == "session.input_audio_transcription.prompt"
    assert str(refused.value).startswith("session.input_audio_transcription.prompt is not supported")


def test_numbers_are_spoken_or_digits_as_the_job_input_says() -> None:
    start = settings.default_settings()
    assert start.transcription.numbers == "spoken"
    digits = applied(start, {"transcription": {"numbers": "digits"}})
    assert digits.transcription.numbers == "digits"
    assert applied(digits, {"transcription": {"delay": "low"}}).transcription.numbers == "digits"
    assert applied(digits, {"transcription": {"numbers": None}}).transcription.numbers == "spoken"
    error = refused(start, {"transcription": {"numbers": "roman"}})
    assert error.param == "session.audio.input.transcription.numbers"
    assert str(error).startswith("session.audio.input.transcription.numbers")
