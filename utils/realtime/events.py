"""The server's events of a live session, in the shapes of OpenAI's Realtime API (transcription mode).

Each builder returns the event as a plain dict, ready for JSON, with a fresh `event_id`. Our own
additions are extra fields that OpenAI's clients ignore: `words` (times in seconds on the session's
audio timeline) on `.completed`, and in the session `transcription.numbers` and the effective silence of
`semantic_vad`.
"""

import uuid
from typing import Any

from utils.asr import model as asr_model
from utils.asr.records import Word
from utils.realtime.settings import SessionSettings, Vad

SESSION_OBJECT = "realtime.transcription_session"
BETA_FORMAT_NAMES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}


def new_id(prefix: str) -> str:
    """An id of OpenAI's form: `item_...`, `event_...`, `sess_...`.

    Args:
        prefix: The kind of thing named.

    Returns:
        The id.
    """
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event with a fresh `event_id`.

    Args:
        kind: Its `type`.
        fields: Its other fields.

    Returns:
        The event.
    """
    return {"type": kind, "event_id": new_id("event"), **fields}


def _vad(vad: Vad | None) -> dict[str, Any] | None:
    if vad is None:
        return None
    shown: dict[str, Any] = {"type": vad.type}
    if vad.type == "semantic_vad":
        shown["eagerness"] = vad.eagerness
    shown.update(
        threshold=vad.threshold,
        prefix_padding_ms=vad.prefix_padding_ms,
        silence_duration_ms=vad.silence_duration_ms,
        idle_timeout_ms=vad.idle_timeout_ms,
        create_response=vad.create_response,
        interrupt_response=vad.interrupt_response,
    )
    return shown


def session_object(settings: SessionSettings, session_id: str, expires_at: int) -> dict[str, Any]:
    """The whole effective configuration, as `session.created` and `session.updated` carry it.

    Args:
        settings: The session's settings.
        session_id: Its id.
        expires_at: When it ends at the latest (Unix seconds).

    Returns:
        OpenAI's transcription session object.
    """
    transcription = settings.transcription
    audio_format: dict[str, Any] = {"type": settings.format_type}
    if settings.format_type == "audio/pcm":
        audio_format["rate"] = settings.rate
    noise = settings.noise_reduction
    return {
        "type": "transcription",
        "object": SESSION_OBJECT,
        "id": session_id,
        "expires_at": expires_at,
        "include": list(settings.include),
        "audio": {
            "input": {
                "format": audio_format,
                "transcription": {
                    "model": asr_model.model_id(transcription.model),
                    "language": transcription.language,
                    "languages": None if transcription.languages is None else list(transcription.languages),
                    "prompt": "",
                    "keywords": list(transcription.keywords),
                    "delay": transcription.delay,
                    "numbers": transcription.numbers,
                },
                "turn_detection": _vad(settings.turn_detection),
                "noise_reduction": None if noise is None else noise.model_dump(),
            }
        },
    }


def beta_session_object(settings: SessionSettings, session_id: str, expires_at: int) -> dict[str, Any]:
    """The same configuration in the older shape, as `transcription_session.updated` carries it.

    Args:
        settings: The session's settings.
        session_id: Its id.
        expires_at: When it ends at the latest (Unix seconds).

    Returns:
        The older transcription session object.
    """
    vad = _vad(settings.turn_detection)
    noise = settings.noise_reduction
    return {
        "object": SESSION_OBJECT,
        "id": session_id,
        "expires_at": expires_at,
        "modalities": ["text"],
        "input_audio_format": BETA_FORMAT_NAMES[settings.format_type],
        "input_audio_transcription": {
            "model": asr_model.model_id(settings.transcription.model),
            "language": settings.transcription.language,
            "prompt": "",
        },
        "turn_detection": vad,
        "input_audio_noise_reduction": None if noise is None else {"type": noise.type},
        "include": list(settings.include),
    }


def error(
    message: str,
    code: str,
    param: str | None = None,
    client_event_id: str | None = None,
    server_fault: bool = False,
) -> dict[str, Any]:
    """OpenAI's `error` event; the session stays open after it unless the server says it closes.

    Args:
        message: One line.
        code: The error's code.
        param: The field it is about, if any.
        client_event_id: The `event_id` of the client event it answers, if that had one.
        server_fault: The server's failure rather than the client's request.

    Returns:
        The event.
    """
    kind = "server_error" if server_fault else "invalid_request_error"
    return event(
        "error",
        error={"type": kind, "code": code, "message": message, "param": param, "event_id": client_event_id},
    )


def speech_started(item_id: str, audio_start_ms: int) -> dict[str, Any]:
    """`input_audio_buffer.speech_started`."""
    return event("input_audio_buffer.speech_started", audio_start_ms=audio_start_ms, item_id=item_id)


def speech_stopped(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """`input_audio_buffer.speech_stopped`."""
    return event("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)


def timeout_triggered(item_id: str, audio_start_ms: int, audio_end_ms: int) -> dict[str, Any]:
    """`input_audio_buffer.timeout_triggered`: no speech for the idle timeout."""
    return event(
        "input_audio_buffer.timeout_triggered",
        audio_start_ms=audio_start_ms,
        audio_end_ms=audio_end_ms,
        item_id=item_id,
    )


def committed(item_id: str, previous_item_id: str | None) -> dict[str, Any]:
    """`input_audio_buffer.committed`."""
    return event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id)


def cleared() -> dict[str, Any]:
    """`input_audio_buffer.cleared`."""
    return event("input_audio_buffer.cleared")


def item_added(item_id: str, previous_item_id: str | None) -> dict[str, Any]:
    """`conversation.item.added`: the turn's user message, its transcript still to come."""
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    return event("conversation.item.added", previous_item_id=previous_item_id, item=item)


def delta(item_id: str, text: str) -> dict[str, Any]:
    """`conversation.item.input_audio_transcription.delta`: settled text, appended to what came before."""
    return event(
        "conversation.item.input_audio_transcription.delta", item_id=item_id, content_index=0, delta=text
    )


def completed(
    item_id: str, transcript: str, seconds: float, language: str | None, words: list[Word]
) -> dict[str, Any]:
    """`conversation.item.input_audio_transcription.completed`, with the language and word times.

    Args:
        item_id: The turn's item.
        transcript: Its whole text (the deltas, joined).
        seconds: The turn's audio length, for `usage`.
        language: The language the text is in, when one was detected.
        words: Its words, times in seconds on the session's audio timeline.

    Returns:
        The event.
    """
    return event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=transcript,
        usage={"type": "duration", "seconds": round(seconds, 3)},
        languages=[{"code": language}] if language else [],
        words=[{"word": word.word, "start": word.start, "end": word.end} for word in words],
    )


def failed(item_id: str, message: str, code: str) -> dict[str, Any]:
    """`conversation.item.input_audio_transcription.failed`.

    Args:
        item_id: The turn's item.
        message: One line.
        code: The worker's error type.

    Returns:
        The event.
    """
    return event(
        "conversation.item.input_audio_transcription.failed",
        item_id=item_id,
        content_index=0,
        error={"type": "transcription_error", "code": code, "message": message, "param": None},
    )
