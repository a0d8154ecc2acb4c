"""OpenAI's transcription form turned into the queue input: what is taken, refused, and how options come."""

from pathlib import Path

import pytest

from utils.contract.job_input import JobInput
from utils.contract.validation import parse_input
from utils.errors import InvalidInputError
from utils.http.openai_params import RESPONSE_FORMATS, TranscriptionForm, TranscriptionRequest, parse_form

SERVED = ["parakeet-tdt-0.6b-v3"]


def parse(*fields: tuple[str, str], served: list[str] = SERVED) -> TranscriptionRequest:
    return parse_form(list(fields), served)


def refused(*fields: tuple[str, str], served: list[str] = SERVED) -> str:
    with pytest.raises(InvalidInputError) as raised:
        parse(*fields, served=served)
    return str(raised.value)


def test_a_bare_form_asks_for_json() -> None:
    request = parse()
    assert request.job_input == {"output_format": "json"}
    assert (request.response_format, request.stream) == ("json", False)


@pytest.mark.parametrize(
    ("fields", "job_input"),
    [
        ([("response_format", "text")], {"output_format": "json"}),
        ([("response_format", "srt")], {"output_format": "srt"}),
        ([("response_format", "vtt")], {"output_format": "vtt"}),
        ([("response_format", "verbose_json")], {"output_format": "json", "timestamps": ["segment"]}),
        (
            [("response_format", "verbose_json"), ("timestamp_granularities[]", "word")],
            {"output_format": "json", "timestamps": ["segment", "word"]},
        ),
        (
            [("response_format", "diarized_json")],
            {"output_format": "json", "timestamps": ["segment"], "diarize": True},
        ),
    ],
)
def test_each_format_asks_the_queue_for_what_it_needs(fields: list[tuple[str, str]], job_input: dict) -> None:
    assert parse(*fields).job_input == job_input


def test_granularities_default_to_segments_and_keep_words() -> None:
    assert parse(("response_format", "verbose_json")).granularities == {"segment"}
    words = parse(("response_format", "verbose_json"), ("timestamp_granularities[]", "word"))
    assert words.granularities == {"word"}


def test_any_model_name_is_taken_with_one_model_and_passed_on_with_several() -> None:
    assert "model" not in parse(("model", "whisper-1")).job_input  # clients send their own defaults
    # With several, it is the queue's model field, which the queue's validation checks.
    assert parse(("model", "b"), served=["a", "b"]).job_input["model"] == "b"
    assert parse(("model", "whisper-1"), served=["a", "b"]).job_input["model"] == "whisper-1"


def test_language_goes_to_the_queue_input_which_checks_it(tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    upload.write_bytes(b"x")
    for code, expected in (("en", "en"), ("EN", "en"), ("de-DE", "de"), ("pt_BR", "pt")):
        job_input = parse(("language", code)).job_input
        assert job_input["language"] == code
        assert parse_input(job_input, upload).language == expected
    with pytest.raises(InvalidInputError) as raised:
        parse_input(parse(("language", "ja")).job_input, upload)
    assert str(raised.value).startswith("language 'ja' is not one the model transcribes")
    assert "cannot be forced" in str(raised.value)


def test_temperature_is_taken_in_range_and_ignored() -> None:
    assert parse(("temperature", "0")).job_input == {"output_format": "json"}
    assert parse(("temperature", "0.7")).job_input == {"output_format": "json"}
    assert refused(("temperature", "2")).startswith("temperature must be a number from 0 to 1")
    assert refused(("temperature", "warm")).startswith("temperature must be a number")


def test_an_empty_prompt_is_taken_and_a_real_one_refused() -> None:
    assert parse(("prompt", "")).response_format == "json"
    assert "send hotwords" in refused(("prompt", "Names: Ada"))


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("include[]", "confidence=true"),
        ("known_speaker_names[]", "diarize=true"),
        ("known_speaker_references[]", "diarize=true"),
    ],
)
def test_parameters_the_model_cannot_honour_are_refused_with_a_reason(field: str, reason: str) -> None:
    message = refused((field, "x"))
    assert message.startswith(f"{field.removesuffix('[]')} is not supported")
    assert reason in message


def test_chunking_strategy_takes_auto_only() -> None:
    assert parse(("chunking_strategy", "auto")).response_format == "json"
    assert refused(("chunking_strategy", '{"type": "server_vad"}')).startswith("chunking_strategy must be")


def test_unknown_fields_are_refused_by_name() -> None:
    assert refused(("colour", "blue"), ("size", "9")) == "unknown form field(s): colour, size"
    assert refused(("audio_url", "https://example.com/a.mp3")) == "unknown form field(s): audio_url"


def test_a_scalar_sent_twice_is_refused() -> None:
    assert refused(("response_format", "json"), ("response_format", "text")) == (
        "response_format must be sent once, as a plain value"
    )


def test_format_rules() -> None:
    assert refused(("response_format", "docx")).startswith("response_format must be one of json, text")
    assert refused(("timestamp_granularities[]", "word")) == (
        "timestamp_granularities needs response_format verbose_json"
    )
    bad = refused(("response_format", "verbose_json"), ("timestamp_granularities[]", "char"))
    assert bad == "timestamp_granularities must hold word and/or segment, got 'char'"
    assert refused(("stream", "true"), ("response_format", "srt")).startswith("stream needs response_format")
    assert refused(("stream", "maybe")) == "stream must be true or false, got 'maybe'"
    assert (
        refused(("subtitle_options[max_lines]", "1")) == "subtitle_options needs response_format srt or vtt"
    )
    assert refused(("confidence", "true"), ("response_format", "text")).startswith("confidence needs")


def test_stream_is_read_as_a_boolean() -> None:
    assert parse(("stream", "true")).stream is True
    assert parse(("stream", "False")).stream is False


def test_options_keep_the_queue_names_and_come_typed() -> None:
    request = parse(
        ("confidence", "true"),
        ("diarize", "true"),
        ("max_speakers", "2"),
        ("hotword_weight", "1.5"),
        ("hotwords[]", "Ada"),
        ("hotwords[]", "Lovelace"),
        ("channels", "separate"),
        ("numbers", "digits"),
    )
    assert request.job_input == {
        "output_format": "json",
        "confidence": True,
        "diarize": True,
        "max_speakers": 2,
        "hotword_weight": 1.5,
        "hotwords": ["Ada", "Lovelace"],
        "channels": "separate",
        "numbers": "digits",
    }


def test_lists_and_objects_come_as_json_or_repeated_fields() -> None:
    assert parse(("hotwords", '["a", "b"]')).job_input["hotwords"] == ["a", "b"]
    assert parse(("hotwords", "solo")).job_input["hotwords"] == ["solo"]
    shaped = parse(("response_format", "srt"), ("subtitle_options[max_lines]", "1"))
    assert shaped.job_input["subtitle_options"] == {"max_lines": 1}
    as_json = parse(("response_format", "srt"), ("subtitle_options", '{"max_lines": 1}'))
    assert as_json.job_input["subtitle_options"] == {"max_lines": 1}
    assert (
        refused(("hotwords", "[oops"))
        == "hotwords must be JSON or repeated fields, got text that is not JSON"
    )


def test_json_nested_too_deeply_is_refused_by_name() -> None:
    # Python's JSON parser raises RecursionError (not ValueError) past its nesting limit: it was a 500.
    assert (
        refused(("hotwords", "[" * 5000 + "]" * 5000)) == "hotwords is nested too deeply: at most 32 levels"
    )
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    assert refused(("response_format", "srt"), ("subtitle_options", deep)) == (
        "subtitle_options is nested too deeply: at most 32 levels"
    )


def test_bad_option_values_get_the_queue_messages(tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    upload.write_bytes(b"x")
    for fields, message in [
        ([("confidence", "yes")], "confidence must be true or false"),
        ([("max_speakers", "2")], "max_speakers needs diarize"),
        ([("channels", "left")], "channels must be"),
        ([("numbers", "true")], "numbers must be"),
        ([("response_format", "srt"), ("subtitle_options[max_lines]", "x")], "subtitle_options.max_lines"),
    ]:
        job_input = parse(*fields).job_input
        with pytest.raises(InvalidInputError) as raised:
            parse_input(job_input, upload)
        assert message in str(raised.value), raised.value


def test_diarized_json_keeps_diarize_on() -> None:
    assert parse(("response_format", "diarized_json"), ("diarize", "false")).job_input["diarize"] is True


@pytest.mark.parametrize(("field", "text"), [("stream", "1"), ("stream", "yes"), ("stream", "on")])
def test_a_flag_is_true_or_false_only(field: str, text: str) -> None:
    assert refused((field, text)) == f"{field} must be true or false, got {text!r}"


def test_each_scalar_is_read_once_and_each_option_keeps_its_text() -> None:
    assert (
        refused(("temperature", "0"), ("temperature", "1"))
        == "temperature must be sent once, as a plain value"
    )
    assert refused(("channels[x]", "mix")) == "channels must be sent once, as a plain value"
    # Not checked here: the queue's validation names the problem with the queue's words.
    assert parse(("confidence", "yes"), ("max_speakers", "0.5")).job_input == {
        "output_format": "json",
        "confidence": "yes",
        "max_speakers": 0.5,
    }


def test_the_form_is_declared_once() -> None:
    schema = TranscriptionForm.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["response_format"]["enum"] == list(RESPONSE_FORMATS)
    assert (
        schema["properties"]["temperature"] | {"minimum": 0, "maximum": 1}
        == schema["properties"]["temperature"]
    )
    # Our options show the job input's declaration.
    job_input = JobInput.model_json_schema()["properties"]
    assert schema["properties"]["max_speakers"]["maximum"] == job_input["max_speakers"]["maximum"]
    assert schema["properties"]["confidence"]["default"] is False
