"""utils/contract/validation.py: the input contract, field by field."""

from typing import Any

import pytest

import config
from utils.contract import validation
from utils.contract.job_input import AudioItemInput, JobInput, SubtitleOptionsInput
from utils.errors import InvalidInputError, PayloadTooLargeError


def test_base64_source_with_defaults() -> None:
    request = validation.parse_input({"audio_base64": "UklGRg=="})
    assert request == validation.JobRequest(
        items=(validation.AudioItem("audio_base64", "UklGRg=="),),
        is_batch=False,
        timestamp_kinds=frozenset(),
        output_formats=frozenset({"json"}),
    )


def test_data_uri_prefix_is_stripped() -> None:
    request = validation.parse_input({"audio_base64": "data:audio/mpeg;base64,SUQz"})
    assert request.items[0].source == "SUQz"
    request = validation.parse_input({"audio_base64": "data:audio/ogg;codecs=opus;base64,T2dnUw=="})
    assert request.items[0].source == "T2dnUw=="


def test_url_source_is_trimmed() -> None:
    request = validation.parse_input({"audio_url": "  https://example.com/a.mp3 \n"})
    assert request.items == (validation.AudioItem("audio_url", "https://example.com/a.mp3"),)


def test_batch_items_keep_order_and_ids() -> None:
    request = validation.parse_input(
        {
            "audios": [{"id": "a", "audio_url": "s3://b/1"}, {"audio_base64": "QQ=="}],
            "output_format": ["srt", "json"],
            "output_url": "s3://b/out.json",
        }
    )
    assert request.is_batch
    assert request.items == (
        validation.AudioItem("audio_url", "s3://b/1", "a"),
        validation.AudioItem("audio_base64", "QQ==", None),
    )
    assert request.output_formats == {"srt", "json"}
    assert request.output_url == "s3://b/out.json"


@pytest.mark.parametrize(("value", "formats"), [("vtt", {"vtt"}), (["text", "srt", "srt"], {"text", "srt"})])
def test_output_format_forms(value: Any, formats: set[str]) -> None:
    assert validation.parse_input({"audio_url": "s3://b/k", "output_format": value}).output_formats == formats


@pytest.mark.parametrize(
    ("value", "kinds"),
    [
        (True, {"word", "segment"}),
        (False, set()),
        (["word"], {"word"}),
        (["char", "segment", "char"], {"char", "segment"}),
        ([], set()),
    ],
)
def test_timestamps_forms(value: Any, kinds: set[str]) -> None:
    assert validation.parse_input({"audio_url": "s3://b/k", "timestamps": value}).timestamp_kinds == kinds


@pytest.mark.parametrize(
    ("job_input", "message"),
    [
        (None, "input must be a JSON object, got null"),
        ([], "input must be a JSON object, got array"),
        ("https://x/a.mp3", "input must be a JSON object, got string"),
        ({}, "input needs one of audio_base64 or audio_url"),
        ({"timestamps": True}, "input needs one of audio_base64 or audio_url"),
        ({"audio_base64": "QQ==", "audio_url": "s3://b/k"}, "both audio_base64 and audio_url"),
        ({"audio_url": "s3://b/k", "timestamp": True}, "unknown field(s) 'timestamp'"),
        ({"audio_url": "s3://b/k", "lang": "en", "beam": 4}, "unknown field(s) 'beam', 'lang'"),
        ({"audio_base64": 12}, "audio_base64 must be a string, got number"),
        ({"audio_base64": None}, "audio_base64 must be a string, got null"),
        ({"audio_base64": ""}, "audio_base64 is empty"),
        ({"audio_base64": "data:audio/wav;base64,"}, "audio_base64 is empty"),
        ({"audio_url": ["https://x"]}, "audio_url must be a string, got array"),
        ({"audio_url": "   "}, "audio_url is empty"),
        ({"audio_url": "https://x/" + "a" * config.MAX_URL_CHARS}, "audio_url is"),
        ({"audio_url": "s3://b/k", "timestamps": "word"}, "timestamps must be true, false or a list"),
        ({"audio_url": "s3://b/k", "timestamps": 1}, "got number"),
        ({"audio_url": "s3://b/k", "timestamps": ["words"]}, "unknown value 'words'"),
        ({"audio_url": "s3://b/k", "timestamps": [True]}, "unknown value boolean"),
        ({"audio_url": "s3://b/k", "output_format": "docx"}, "output_format has unknown value 'docx'"),
        ({"audio_url": "s3://b/k", "output_format": []}, "output_format is an empty list"),
        ({"audio_url": "s3://b/k", "output_format": 3}, "output_format must be a list"),
        (
            {"audio_url": "s3://b/k", "output_format": "srt", "timestamps": True},
            'add "json" to output_format',
        ),
        ({"audio_url": "s3://b/k", "output_url": 5}, "output_url must be a string, got number"),
        ({"audios": "s3://b/k"}, "audios must be a list of objects, got string"),
        ({"audios": []}, "audios is an empty list"),
        ({"audios": ["s3://b/k"]}, "audios[0] must be an object, got string"),
        ({"audios": [{"audio_url": "s3://b/k", "lang": "en"}]}, "audios[0] has unknown field(s) 'lang'"),
        ({"audios": [{"id": "x"}]}, "audios[0] needs one of audio_base64 or audio_url"),
        ({"audios": [{"audio_url": "s3://b/k"}, {"audio_url": 7}]}, "audios[1].audio_url must be a string"),
        ({"audios": [{"audio_url": "s3://b/k", "id": 7}]}, "audios[0].id must be a string"),
        ({"audios": [{"audio_url": "s3://b/k"}], "audio_url": "s3://b/k"}, "send one form"),
        # An emoji cut at 256 UTF-16 units leaves a lone surrogate, which no JSON output can carry.
        (
            {"audios": [{"audio_url": "s3://b/k", "id": "clip-\ud83d"}]},
            "audios[0].id is not valid Unicode text",
        ),
        ({"audio_base64": "data:audio/wav,UklGRg=="}, "audio_base64 has a malformed data: prefix"),
        ({"audio_base64": "data:;base64"}, "audio_base64 has a malformed data: prefix"),
    ],
)
def test_bad_inputs_name_the_problem(job_input: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input(job_input)
    assert message in str(raised.value)
    assert raised.value.error_type == "invalid_input"


def test_oversize_base64_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BASE64_CHARS", 100)
    validation.parse_input({"audio_base64": "A" * 100})
    with pytest.raises(PayloadTooLargeError) as raised:
        validation.parse_input({"audio_base64": "A" * 101})
    assert "101 characters; the limit is 100" in str(raised.value)
    assert raised.value.error_type == "payload_too_large"


def test_batch_base64_total_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BASE64_CHARS", 100)
    with pytest.raises(PayloadTooLargeError):
        validation.parse_input({"audios": [{"audio_base64": "A" * 60}, {"audio_base64": "A" * 60}]})


def test_batch_size_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BATCH_ITEMS", 2)
    with pytest.raises(InvalidInputError, match="audios has 3 items; the limit is 2"):
        validation.parse_input({"audios": [{"audio_url": "s3://b/k"}] * 3})


def test_a_flood_of_unknown_fields_is_named_briefly() -> None:
    job_input = {"audio_url": "s3://b/k", **{f"key{i:05d}": 1 for i in range(10_000)}, "x" * 1_000_000: 1}
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input(job_input)
    message = str(raised.value)
    assert message.startswith("input has unknown field(s) 'key00000', 'key00001', 'key00002', 'key00003',")
    assert "and 9996 more; allowed:" in message
    assert len(message) < 600


def test_a_huge_unknown_field_name_is_cut_short() -> None:
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input({"audio_url": "s3://b/k", "y" * 1_000_000: 1})
    assert "'yyyy" in str(raised.value)
    assert len(str(raised.value)) < 400


@pytest.mark.parametrize(
    ("job_input", "message"),
    [
        # A key that is a lone surrogate is valid JSON; pydantic cannot read it as a field name.
        ({"audio_url": "s3://b/k", "\ud800": 1}, "input has unknown field(s) '\\ud800'; allowed:"),
        ({"audio_url": 5, "x": 1, "\ud800": 1}, "input has unknown field(s) 'x', '\\ud800'; allowed:"),
        ({"audios": [{"audio_url": "s3://b/k", "\udfff": 1}]}, "audios[0] has unknown field(s) '\\udfff'"),
        (
            {"audio_url": "s3://b/k", "output_format": "srt", "subtitle_options": {"\ud83d": 1}},
            "subtitle_options has unknown field(s) '\\ud83d'",
        ),
    ],
)
def test_an_unknown_field_named_by_a_lone_surrogate_is_named(job_input: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input(job_input)
    assert str(raised.value).startswith(message)


HUGE = 10**400  # valid JSON, and too large for a float


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ({"output_format": "srt", "subtitle_options": {"max_lines": HUGE}}, "subtitle_options.max_lines"),
        (
            {"output_format": "srt", "subtitle_options": {"max_line_chars": -HUGE}},
            "subtitle_options.max_line_chars",
        ),
        (
            {"output_format": "srt", "subtitle_options": {"max_cue_seconds": HUGE}},
            "subtitle_options.max_cue_seconds",
        ),
        ({"diarize": True, "max_speakers": HUGE}, "max_speakers"),
        ({"hotwords": ["one"], "hotword_weight": HUGE}, "hotword_weight"),
    ],
)
def test_numbers_of_any_size_are_refused_by_name(job_input: dict[str, Any], field: str) -> None:
    with pytest.raises(
        InvalidInputError, match=rf"^{field} must be a (whole )?number from .*, got a number too large"
    ):
        validation.parse_input({"audio_url": "s3://bucket/a.mp3", **job_input})


def test_the_accepted_fields_are_the_input_models() -> None:
    assert set(JobInput.model_fields) == validation.ALLOWED_FIELDS
    assert set(AudioItemInput.model_fields) == validation.ALLOWED_ITEM_FIELDS
    with pytest.raises(InvalidInputError, match="allowed: " + ", ".join(sorted(JobInput.model_fields))):
        validation.parse_input({"audio_url": "s3://bucket/a.mp3", "languge": "en"})
    with pytest.raises(
        InvalidInputError, match="allowed: " + ", ".join(sorted(SubtitleOptionsInput.model_fields))
    ):
        validation.parse_input(
            {"audio_url": "s3://bucket/a.mp3", "output_format": "srt", "subtitle_options": {"x": 1}}
        )


@pytest.mark.parametrize(
    ("value", "code"), [("en", "en"), ("DE", "de"), ("pt-BR", "pt"), ("uk", "uk"), (None, None)]
)
def test_language_is_a_model_language_without_region(value: str | None, code: str | None) -> None:
    assert validation.parse_input({"audio_base64": "UklGRg==", "language": value}).language == code


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ja", "language 'ja' is not one the model transcribes (bg, cs,"),
        ("", "language '' is not one the model transcribes"),
        (5, "language must be a string, got number"),
        (["en"], "language must be a string, got array"),
    ],
)
def test_a_language_the_model_does_not_know_is_refused_by_name(value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input({"audio_base64": "UklGRg==", "language": value})
    assert str(raised.value).startswith(message)


def test_language_is_checked_against_the_jobs_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only names are compared: neither model is loaded.
    v3, v2 = "nvidia/parakeet-tdt-0.6b-v3", "nvidia/parakeet-tdt-0.6b-v2"
    monkeypatch.setattr(config, "PARAKEET_MODELS", (v3, v2))
    assert validation.parse_input({"audio_base64": "UklGRg==", "language": "de"}).language == "de"
    english = {"audio_base64": "UklGRg==", "model": v2}
    assert validation.parse_input({**english, "language": "en-GB"}).language == "en"
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input({**english, "language": "de"})
    assert str(raised.value).startswith(f"language 'de' is not one model '{v2}' transcribes (en);")


@pytest.mark.parametrize(
    ("job_input", "message"),
    [
        ({"diarize": "true"}, "diarize must be true or false, got string"),
        ({"confidence": 1}, "confidence must be true or false, got number"),
        ({"vad": None}, "vad must be true or false, got null"),
        (
            {"diarize": True, "max_speakers": 2.0},
            "max_speakers must be a whole number from 1 to 4, got number",
        ),
        (
            {"diarize": True, "max_speakers": True},
            "max_speakers must be a whole number from 1 to 4, got boolean",
        ),
        (
            {"diarize": True, "max_speakers": "2"},
            "max_speakers must be a whole number from 1 to 4, got string",
        ),
        (
            {"output_format": "srt", "subtitle_options": {"max_lines": 1.5}},
            "subtitle_options.max_lines must be a whole number from 1 to 5, got number",
        ),
        (
            {"hotwords": ["a"], "hotword_weight": "2"},
            "hotword_weight must be a number from 0.1 to 10, got string",
        ),
        ({"hotwords": ["a"], "hotword_weight": 11}, "hotword_weight must be a number from 0.1 to 10, got 11"),
        ({"channels": "left"}, "channels must be one of 'mix', 'separate', got 'left'"),
        ({"hotwords": "Ada"}, "hotwords must be a list of phrases, got string"),
        ({"hotwords": []}, f"hotwords must hold 1 to {config.MAX_HOTWORDS} phrases, got 0"),
        ({"hotwords": ["Ada", 5]}, "hotwords[1] must be a string, got number"),
        ({"hotwords": ["Ada", "  "]}, "hotwords[1] is blank"),
        ({"output_url": None}, "output_url must be a string, got null"),
        ({"subtitle_options": None, "output_format": "vtt"}, "subtitle_options must be an object, got null"),
        ({"timestamps": None}, "timestamps must be true, false or a list of word, segment, char; got null"),
        ({"model": 5}, "model must be a string, got number"),
    ],
)
def test_types_are_strict_and_null_is_a_value(job_input: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input({"audio_url": "s3://b/k", **job_input})
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("job_input", "message"),
    [
        # An object's unknown fields come before anything inside it, wherever pydantic lists them.
        ({"audios": [{"audio_url": 5}], "x": 1}, "input has unknown field(s) 'x'"),
        ({"audios": [{"audio_url": 5, "x": 1}]}, "audios[0] has unknown field(s) 'x'"),
        # Then the audio's form, then the fields in declared order with the rules about each.
        ({"timestamps": "word"}, "input needs one of audio_base64 or audio_url"),
        ({"audio_url": "s3://b/k", "vad": 1, "timestamps": "word"}, "timestamps must be true, false"),
        ({"audio_url": "s3://b/k", "max_speakers": 9, "confidence": 2}, "confidence must be true or false"),
        ({"audio_url": "s3://b/k", "max_speakers": 9, "diarize": False}, "max_speakers needs diarize: true"),
    ],
)
def test_the_first_problem_is_reported(job_input: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validation.parse_input(job_input)
    assert str(raised.value).startswith(message)


def test_subtitle_defaults_are_read_when_a_job_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "SUBTITLE_MAX_LINES", 1)
    request = validation.parse_input(
        {"audio_url": "s3://b/k", "output_format": "srt", "subtitle_options": {"max_line_chars": 20}}
    )
    assert request.subtitles == validation.SubtitleOptions(20, 1, config.SUBTITLE_MAX_CUE_SECONDS)


def test_an_upload_is_the_one_audio(tmp_path: Any) -> None:
    upload = tmp_path / "upload"
    request = validation.parse_input({"timestamps": True}, upload)
    assert request.items == (validation.AudioItem(validation.UPLOAD_FIELD, str(upload)),)
    with pytest.raises(InvalidInputError, match="^audio_url cannot be sent with an uploaded file"):
        validation.parse_input({"audio_url": "s3://b/k"}, upload)


def test_hotwords_take_the_default_weight_and_collapse() -> None:
    request = validation.parse_input(
        {"audio_url": "s3://b/k", "hotwords": [" Ada  Lovelace", "Ada Lovelace", "x"]}
    )
    assert (request.hotwords, request.hotword_weight) == (("Ada Lovelace", "x"), config.HOTWORD_WEIGHT)


@pytest.mark.parametrize("field", ["hotwords", "subtitle_options", "audios"])
@pytest.mark.parametrize("depth", [config.MAX_JSON_DEPTH + 1, 5000])
def test_deep_nesting_is_refused_naming_the_field(field: str, depth: int) -> None:
    value: Any = "x"
    for _ in range(depth):  # built without recursion; deeper than any parser would go
        value = [value]
    job_input = {"audio_url": "https://example.com/a.wav", field: value}
    if field == "audios":
        job_input.pop("audio_url")
    with pytest.raises(InvalidInputError, match=f"^{field} is nested too deeply: at most 32 levels$"):
        validation.parse_input(job_input)
