"""The queue's success contract rendered as OpenAI's responses and stream events."""

import json

from utils.http import formats

RESULT = {
    "success": True,
    "text": "one two. three",
    "duration": 3.2,
    "confidence": 0.9,
    "language": "en",
    "language_confidence": 0.99,
    "speakers": [{"speaker": "S1", "seconds": 1.0}, {"speaker": "S2", "seconds": 0.5}],
    "timestamps": {
        "segment": [
            {"text": "one two.", "start": 0.1, "end": 0.9, "confidence": 0.9, "speaker": "S1"},
            {"text": "three", "start": 1.5, "end": 2.0, "confidence": 0.8, "speaker": "S2"},
        ],
        "word": [
            {"word": "one", "start": 0.1, "end": 0.4, "confidence": 0.9, "speaker": "S1"},
            {"word": "two.", "start": 0.5, "end": 0.9, "confidence": 0.9, "speaker": "S1"},
            {"word": "three", "start": 1.5, "end": 2.0, "confidence": 0.8, "speaker": "S2"},
        ],
    },
    "srt": "1\n00:00:00,100 --> 00:00:02,000\none two. three\n\n",
    "meta": {"model": "m"},
}


def test_json_is_text_and_usage() -> None:
    rendered = formats.render(RESULT, "json", frozenset())
    assert rendered.json == {
        "text": "one two. three",
        "confidence": 0.9,
        "usage": {"type": "duration", "seconds": 3.2},
    }


def test_text_and_subtitles_are_plain_text_with_their_types() -> None:
    assert formats.render(RESULT, "text", frozenset()) == formats.Rendered(text="one two. three")
    srt = formats.render(RESULT, "srt", frozenset())
    assert (srt.text, srt.media_type) == (RESULT["srt"], "application/x-subrip")


def test_verbose_json_puts_our_extras_inside_the_entries() -> None:
    body = formats.render(RESULT, "verbose_json", frozenset({"segment", "word"})).json
    assert body["task"] == "transcribe"
    assert body["segments"][1] == {
        "id": 1, "text": "three", "start": 1.5, "end": 2.0, "confidence": 0.8, "speaker": "S2"
    }  # fmt: skip
    assert body["words"][0] == {"word": "one", "start": 0.1, "end": 0.4, "confidence": 0.9, "speaker": "S1"}
    assert body["usage"] == {"type": "duration", "seconds": 3.2}
    assert "meta" not in body


def test_verbose_json_leaves_out_granularities_not_asked() -> None:
    body = formats.render(RESULT, "verbose_json", frozenset({"word"})).json
    assert "segments" not in body
    assert len(body["words"]) == 3


def test_diarized_json_segments_have_types_ids_and_speakers() -> None:
    body = formats.render(RESULT, "diarized_json", frozenset()).json
    assert [segment["id"] for segment in body["segments"]] == ["seg_0", "seg_1"]
    assert {segment["type"] for segment in body["segments"]} == {"transcript.text.segment"}
    assert [segment["speaker"] for segment in body["segments"]] == ["S1", "S2"]


def test_a_stream_ends_with_what_the_deltas_did_not_carry() -> None:
    events = formats.done_events(RESULT, "one two.", "json")
    assert events == [
        {"type": "transcript.text.delta", "delta": " three"},
        {
            "type": "transcript.text.done",
            "text": "one two. three",
            "usage": {"type": "duration", "seconds": 3.2},
        },
    ]
    assert formats.done_events(RESULT, "one two. three", "json")[0]["type"] == "transcript.text.done"


def test_a_diarized_stream_sends_its_segments_before_done() -> None:
    events = formats.done_events(RESULT, "", "diarized_json")
    assert [event["type"] for event in events] == [
        "transcript.text.delta", "transcript.text.segment", "transcript.text.segment", "transcript.text.done"
    ]  # fmt: skip


def test_an_event_is_one_data_line() -> None:
    text = formats.sse(formats.delta_event("zwölf"))
    assert text.startswith("data: ")
    assert text.endswith("\n\n")
    assert json.loads(text.removeprefix("data: ")) == {"type": "transcript.text.delta", "delta": "zwölf"}
