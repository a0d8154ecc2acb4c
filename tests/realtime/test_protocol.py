"""The client events as declared: what is read, and each refusal naming its field by path (no server)."""

import json
from typing import Any

import pytest

from utils.realtime import protocol
from utils.realtime.protocol import EventError


def parsed(event: Any) -> protocol.ClientEvent:
    return protocol.parse_event(event if isinstance(event, str) else json.dumps(event))


def refusal(event: Any) -> EventError:
    with pytest.raises(EventError) as refused:
        parsed(event)
    return refused.value


def session_update(audio_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}


def test_the_five_client_events_are_read() -> None:
    assert isinstance(parsed({"type": "input_audio_buffer.append", "audio": "AAAA"}), protocol.Append)
    assert isinstance(parsed({"type": "input_audio_buffer.commit", "event_id": "e1"}), protocol.Commit)
    assert isinstance(parsed({"type": "input_audio_buffer.clear"}), protocol.Clear)
    beta = parsed({"type": "transcription_session.update", "session": {"input_audio_format": "pcm16"}})
    assert isinstance(beta, protocol.BetaSessionUpdate)
    full = session_update(
        {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1", "language": "en", "keywords": ["seven"], "delay": "low"},
            "turn_detection": {"type": "server_vad", "threshold": 0.4, "idle_timeout_ms": 5000},
            "noise_reduction": {"type": "near_field"},
        }
    )
    event = parsed(full)
    assert isinstance(event, protocol.SessionUpdate)
    audio_input = event.session.audio.input
    assert isinstance(audio_input.format, protocol.PcmFormat)
    assert isinstance(audio_input.turn_detection, protocol.ServerVad)
    assert audio_input.transcription.delay == "low"


def test_openai_own_session_update_param_is_accepted() -> None:
    """What the official client's typed params produce for a transcription session reads as sent."""
    from openai.types.realtime import session_update_event_param  # noqa: F401  (the shape's home)

    event = {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-transcribe", "prompt": ""},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "auto"},
                    "noise_reduction": None,
                }
            },
            "include": [],
        },
    }
    assert isinstance(parsed(event), protocol.SessionUpdate)


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ("{", "invalid_json", None),
        ("[" * 100_000 + "]" * 100_000, "invalid_json", None),  # nested past the parser's depth
        ("3", "invalid_event", None),
        ({"audio": "AAAA"}, "missing_required_parameter", "type"),
        ({"type": 7}, "missing_required_parameter", "type"),
        ({"type": "conversation.item.create"}, "unknown_event", "type"),
        ({"type": "input_audio_buffer.append", "audio": None}, "invalid_value", "audio"),
        ({"type": "input_audio_buffer.clear", "event_id": 5}, "invalid_value", "event_id"),
        ({"type": "session.update"}, "missing_required_parameter", "session"),
        ({"type": "session.update", "session": {"type": "realtime"}}, "invalid_value", "session.type"),
        ({"type": "session.update", "session": {}}, "missing_required_parameter", "session.type"),
        (session_update({"format": {"rate": 24000}}), "invalid_value", "session.audio.input.format.type"),
        (
            session_update({"format": {"type": "audio/pcmu", "rate": 16000}}),
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (
            session_update({"turn_detection": {"type": "server_vad", "threshold": "0.5"}}),
            "invalid_value",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            session_update({"turn_detection": {"type": "server_vad", "prefix_padding_ms": 300.5}}),
            "invalid_value",
            "session.audio.input.turn_detection.prefix_padding_ms",
        ),
        (
            session_update({"turn_detection": {"type": "server_vad", "idle_timeout_ms": 10}}),
            "invalid_value",
            "session.audio.input.turn_detection.idle_timeout_ms",
        ),
        (
            session_update({"turn_detection": {"type": "semantic_vad", "threshold": 0.5}}),
            "unknown_parameter",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            session_update({"noise_reduction": {"type": "studio"}}),
            "invalid_value",
            "session.audio.input.noise_reduction.type",
        ),
        (
            session_update({"transcription": {"keywords": "seven"}}),
            "invalid_value",
            "session.audio.input.transcription.keywords",
        ),
        (
            {"type": "transcription_session.update", "session": {"input_audio_format": "mp3"}},
            "invalid_value",
            "session.input_audio_format",
        ),
        (
            {"type": "transcription_session.update", "session": {"voice": "alloy"}},
            "unknown_parameter",
            "session.voice",
        ),
    ],
)
def test_each_refusal_names_the_field(event: Any, code: str, param: str | None) -> None:
    error = refusal(event)
    assert (error.code, error.param) == (code, param)
    if param is not None:
        assert param in str(error)


def test_the_refused_event_keeps_its_event_id() -> None:
    error = refusal({"type": "input_audio_buffer.commit", "event_id": "evt_7", "extra": True})
    assert error.event_id == "evt_7"
    assert refusal('"text"').event_id is None


def test_a_long_value_is_shortened_in_the_message() -> None:
    error = refusal(session_update({"format": {"type": "x" * 5000}}))
    assert len(str(error)) < 300
