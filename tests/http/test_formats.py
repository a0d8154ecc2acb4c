"""The queue's success contract rendered as OpenAI's responses and stream events, each checked against
the `openai` package's own types in strict mode (`tests.support.openai_types`)."""

import json
import zlib

import pytest
from openai.types.audio import (
    Transcription,
    TranscriptionDiarized,
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    TranscriptionTextSegmentEvent,
    TranscriptionVerbose,
)

from tests.support.openai_types import STREAM_EVENTS, strictly
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
            {
                "text": "one two.",
                "start": 0.1,
                "end": 0.9,
                "confidence": 0.9,
                "speaker": "S1",
                "tokens": [5, 17, 3, 30],
                "avg_logprob": -0.25,
                "no_speech_prob": 0.01,
            },
            {
                "text": "three",
                "start": 1.5,
                "end": 2.0,
                "confidence": 0.8,
                "speaker": "S2",
                "tokens": [29, 20],
                "avg_logprob": -0.5,
                "no_speech_prob": 0.2,
            },
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
    assert strictly(Transcription, rendered.json).usage.seconds == 3.2


def test_text_and_subtitles_are_plain_text_with_their_types() -> None:
    assert formats.render(RESULT, "text", frozenset()) == formats.Rendered(text="one two. three")
    srt = formats.render(RESULT, "srt", frozenset())
    assert (srt.text, srt.media_type) == (RESULT["srt"], "application/x-subrip")


def test_verbose_json_segments_have_whisper_fields_then_our_extras() -> None:
    body = formats.render(RESULT, "verbose_json", frozenset({"segment", "word"})).json
    assert body["task"] == "transcribe"
    assert body["segments"][1] == {
        "id": 1,
        "seek": 150,
        "start": 1.5,
        "end": 2.0,
        "text": "three",
        "tokens": [29, 20],
        "temperature": 0.0,
        "avg_logprob": -0.5,
        "compression_ratio": len(b"three") / len(zlib.compress(b"three")),
        "no_speech_prob": 0.2,
        "confidence": 0.8,
        "speaker": "S2",
    }
    assert body["words"][0] == {"word": "one", "start": 0.1, "end": 0.4, "confidence": 0.9, "speaker": "S1"}
    assert body["usage"] == {"type": "duration", "seconds": 3.2}
    assert "meta" not in body
    verbose = strictly(TranscriptionVerbose, body)
    assert [segment.seek for segment in verbose.segments] == [10, 150]


def test_verbose_json_leaves_out_granularities_not_asked() -> None:
    body = formats.render(RESULT, "verbose_json", frozenset({"word"})).json
    assert "segments" not in body
    assert len(body["words"]) == 3
    strictly(TranscriptionVerbose, body)


def test_verbose_json_without_a_detected_language_still_has_a_string() -> None:
    silent = {**RESULT, "text": "", "language": None, "timestamps": {"segment": [], "word": []}}
    body = formats.render(silent, "verbose_json", frozenset({"segment"})).json
    assert strictly(TranscriptionVerbose, body).language == ""


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        ("seven three nine", len(b"seven three nine") / len(zlib.compress(b"seven three nine"))),
        ("zwölf", len("zwölf".encode()) / len(zlib.compress("zwölf".encode()))),
        ("", 0.0),
    ],
)
def test_compression_ratio_is_whispers(text: str, ratio: float) -> None:
    assert formats.compression_ratio(text) == ratio


def test_repetition_compresses_well() -> None:
    assert formats.compression_ratio("one two " * 40) > 2.4 > formats.compression_ratio("one two three four")


def test_a_segment_without_its_token_fields_fails_the_strict_check() -> None:
    """The check can fail: a segment whose tokens were never computed lacks OpenAI's required fields."""
    bare = {"text": "three", "start": 1.5, "end": 2.0}
    body = formats.render(
        {**RESULT, "timestamps": {"segment": [bare], "word": []}}, "verbose_json", frozenset({"segment"})
    ).json
    with pytest.raises(AssertionError, match="avg_logprob"):
        strictly(TranscriptionVerbose, body)


def test_diarized_json_segments_have_types_ids_and_speakers() -> None:
    body = formats.render(RESULT, "diarized_json", frozenset()).json
    assert [segment["id"] for segment in body["segments"]] == ["seg_0", "seg_1"]
    assert {segment["type"] for segment in body["segments"]} == {"transcript.text.segment"}
    assert [segment["speaker"] for segment in body["segments"]] == ["S1", "S2"]
    strictly(TranscriptionDiarized, body)
    for segment in body["segments"]:
        strictly(TranscriptionTextSegmentEvent, segment)


def test_a_stream_ends_with_what_the_deltas_did_not_carry() -> None:
    events = formats.done_events(RESULT, "one two.", "json")
    assert events == [
        {"type": "transcript.text.delta", "delta": " three"},
        {"type": "transcript.text.done", "text": "one two. three", "duration": 3.2},
    ]
    assert formats.done_events(RESULT, "one two. three", "json")[0]["type"] == "transcript.text.done"


@pytest.mark.parametrize("response_format", ["json", "text", "diarized_json"])
def test_every_stream_event_is_openais(response_format: str) -> None:
    events = [formats.delta_event("one"), *formats.done_events(RESULT, "one", response_format)]
    for event in events:
        strictly(STREAM_EVENTS[event["type"]], json.loads(formats.sse(event).removeprefix("data: ")))
    done = strictly(TranscriptionTextDoneEvent, events[-1])
    assert done.usage is None  # OpenAI's done event counts tokens; the audio's seconds are our `duration`
    assert events[-1]["duration"] == 3.2
    assert strictly(TranscriptionTextDeltaEvent, events[0]).delta == "one"
