"""utils/contract/rules.py: the rules no type can say, each on its own."""

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic_core import PydanticCustomError

import config
from utils.contract import rules
from utils.contract.job_input import AudioItemInput


def broken_text(call: Any, *args: Any) -> str:
    with pytest.raises(PydanticCustomError) as raised:
        call(*args)
    return raised.value.context["text"]


def test_one_source_of_audio() -> None:
    rules.one_source({"audio_url": "s3://b/k", "id": "a"})
    assert broken_text(rules.one_source, {"id": "a"}) == "needs one of audio_base64 or audio_url"
    both = {"audio_url": "s3://b/k", "audio_base64": "QQ=="}
    assert broken_text(rules.one_source, both) == "has both audio_base64 and audio_url; send exactly one"


def test_one_form_of_audio_for_the_job() -> None:
    rules.one_form({"audios": []}, None)  # the list itself is the declaration's to check
    rules.one_form({"timestamps": True}, "/tmp/upload")
    mixed = {"audios": [], "audio_url": "s3://b/k"}
    assert broken_text(rules.one_form, mixed, None).endswith("send one form")
    message = broken_text(rules.one_form, {"audios": []}, "/tmp/upload")
    assert message == "audios cannot be sent with an uploaded file; send one audio"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [("UklGRg==", "UklGRg=="), ("data:audio/wav;base64,UklGRg==", "UklGRg=="), ("DATA:;base64,QQ==", "QQ==")],
)
def test_base64_text_loses_its_prefix(value: str, encoded: str) -> None:
    assert rules.base64_text(value) == encoded


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("data:audio/wav,QQ==", "has a malformed data: prefix"),
        (" \n", "is empty"),
        ("data:a/b;base64,", "is empty"),
    ],
)
def test_base64_text_refused(value: str, text: str) -> None:
    assert broken_text(rules.base64_text, value).startswith(text)


def test_a_hotword_phrase_is_collapsed_text_of_bounded_length() -> None:
    assert rules.phrase("  Ada \n Lovelace ") == "Ada Lovelace"
    assert broken_text(rules.phrase, " \t ") == "is blank"
    assert broken_text(rules.phrase, "a\ud83d") == "must be valid Unicode text"
    too_long = "x" * (config.MAX_HOTWORD_CHARS + 1)
    assert (
        broken_text(rules.phrase, too_long)
        == f"is {len(too_long)} characters; at most {config.MAX_HOTWORD_CHARS}"
    )
    assert rules.distinct(["b", "a", "b"]) == ["b", "a"]


def earlier(**fields: Any) -> SimpleNamespace:
    """What a field's validator reads of pydantic's `ValidationInfo`: the fields validated before it."""
    return SimpleNamespace(data=fields)


def test_a_batch_carries_at_most_the_base64_limit_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BASE64_CHARS", 10)
    items = [AudioItemInput(audio_base64="a" * 5), AudioItemInput(audio_url="s3://b/k")]
    assert rules.batch_payload(items) == items
    with pytest.raises(PydanticCustomError) as raised:
        rules.batch_payload([AudioItemInput(audio_base64="a" * 6), AudioItemInput(audio_base64="b" * 5)])
    assert raised.value.context["too_large"]
    assert raised.value.context["whole"]
    assert raised.value.context["text"].startswith(
        "audios carry 11 base64 characters in all; the limit is 10"
    )


def test_options_that_need_another() -> None:
    assert rules.timestamps_in_json(["srt", "json"], earlier(timestamps=["word"])) == ["srt", "json"]
    assert broken_text(rules.timestamps_in_json, ["srt"], earlier(timestamps=["word"])).startswith(
        'timestamps are returned in the "json" output format'
    )
    assert rules.confidence_in_json(True, earlier()) is True  # output_format failed: its own problem is named
    assert broken_text(rules.confidence_in_json, True, earlier(output_format=["srt"])).startswith(
        'confidence is returned in the "json" output format'
    )
    assert rules.subtitles_need_srt_or_vtt({}, earlier(output_format=["vtt"])) == {}
    message = broken_text(rules.subtitles_need_srt_or_vtt, {}, earlier(output_format=["json"]))
    assert message.startswith('shape "srt" and "vtt"')
    needs_diarize = rules.needs("diarize", "diarize: true")
    assert needs_diarize(2, earlier(diarize=True)) == 2
    assert needs_diarize(2, earlier()) == 2  # diarize failed: its own problem is named
    assert broken_text(needs_diarize, 2, earlier(diarize=False)) == "needs diarize: true"
    assert broken_text(rules.needs("hotwords", "hotwords"), 2, earlier(hotwords=None)) == "needs hotwords"


def test_a_model_served_here_and_a_language_it_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    v3, v2 = "nvidia/parakeet-tdt-0.6b-v3", "nvidia/parakeet-tdt-0.6b-v2"
    monkeypatch.setattr(config, "PARAKEET_MODELS", (v3, v2))
    assert rules.served_model(f" {v2} ") == v2
    assert rules.served_model(None) is None
    assert broken_text(rules.served_model, "whisper").startswith("model 'whisper' is not served here")
    assert rules.model_language("DE-at", earlier(model=None)) == "de"
    assert rules.model_language("xx", earlier()) == "xx"  # the model's own problem is named instead
    message = broken_text(rules.model_language, "de", earlier(model=v2))
    assert message.startswith(f"'de' is not one model '{v2}'")
