"""The server's events as OpenAI's client types declare them: each builder's output validates against
the `openai` package's model of that event (the reference), our extra fields aside."""

from typing import Any

import pytest
from openai.types.beta.realtime import TranscriptionSessionUpdatedEvent
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    InputAudioBufferTimeoutTriggered,
    RealtimeErrorEvent,
    SessionCreatedEvent,
)
from openai.types.realtime.realtime_transcription_session_create_request import (
    RealtimeTranscriptionSessionCreateRequest,
)
from pydantic import BaseModel

from utils.asr.records import Word
from utils.realtime import events, settings


def strict(model: type[BaseModel], event: dict[str, Any]) -> BaseModel:
    """Validates with the client's model, fields it does not declare left out (they are ours)."""
    declared = {name: value for name, value in event.items() if name in model.model_fields}
    return model.model_validate(declared)


def test_session_events_validate() -> None:
    for current in (
        settings.default_settings(),
        settings.SessionSettings(
            "audio/pcmu",
            settings.default_settings().transcription,
            settings.semantic_vad("low", None, None),
        ),
        settings.SessionSettings("audio/pcma", settings.default_settings().transcription, None),
    ):
        session = events.session_object(current, "sess_1", 1_900_000_000)
        created = strict(SessionCreatedEvent, events.event("session.created", session=session))
        assert isinstance(created.session, RealtimeTranscriptionSessionCreateRequest)
        assert created.session.audio.input.format.type == current.format_type
        beta = events.beta_session_object(current, "sess_1", 1_900_000_000)
        # The older shape declares OpenAI's own model names and an ephemeral key: ours names the served
        # model and issues no key; the rest must validate as it is.
        assert "client_secret" not in beta
        beta = {**beta, "client_secret": {"expires_at": 0, "value": ""}}
        beta["input_audio_transcription"] = {**beta["input_audio_transcription"], "model": "whisper-1"}
        updated_event = events.event("transcription_session.updated", session=beta)
        updated = strict(TranscriptionSessionUpdatedEvent, updated_event)
        assert updated.session.input_audio_format in ("pcm16", "g711_ulaw", "g711_alaw")


@pytest.mark.parametrize(
    ("model", "event"),
    [
        (InputAudioBufferSpeechStartedEvent, events.speech_started("item_1", 300)),
        (InputAudioBufferSpeechStoppedEvent, events.speech_stopped("item_1", 1500)),
        (InputAudioBufferTimeoutTriggered, events.timeout_triggered("item_2", 1000, 6000)),
        (InputAudioBufferCommittedEvent, events.committed("item_2", "item_1")),
        (InputAudioBufferCommittedEvent, events.committed("item_1", None)),
        (InputAudioBufferClearedEvent, events.cleared()),
        (ConversationItemAdded, events.item_added("item_1", None)),
        (ConversationItemInputAudioTranscriptionDeltaEvent, events.delta("item_1", "seven")),
        (
            ConversationItemInputAudioTranscriptionCompletedEvent,
            events.completed("item_1", "seven three", 1.2345, "en", [Word("seven", 0.3, 0.6)]),
        ),
        (
            ConversationItemInputAudioTranscriptionFailedEvent,
            events.failed("item_1", "it failed", "internal"),
        ),
        (RealtimeErrorEvent, events.error("audio must be base64", "invalid_value", "audio", "evt_1")),
        (RealtimeErrorEvent, events.error("shutting down", "server_shutting_down", server_fault=True)),
    ],
)
def test_each_event_validates(model: type[BaseModel], event: dict[str, Any]) -> None:
    assert strict(model, event).type == event["type"]
    assert event["event_id"].startswith("event_")


def test_completed_carries_usage_languages_and_words() -> None:
    done = events.completed("item_1", "seven", 0.51234, "en", [Word("seven", 10.5, 10.9)])
    assert done["usage"] == {"type": "duration", "seconds": 0.512}
    assert done["languages"] == [{"code": "en"}]
    assert done["words"] == [{"word": "seven", "start": 10.5, "end": 10.9}]
    assert events.completed("item_1", "", 0.2, None, [])["languages"] == []
