"""OpenAI's Realtime API in its transcription mode: the client events and the session settings, declared.

Declared once here, as the `openai` package's `types/realtime` define them: `session.update` (with
`session.type: "transcription"`), the older `transcription_session.update`, and
`input_audio_buffer.append`, `.commit` and `.clear`. Types are strict and objects closed, so a mistyped
value or an unknown field is refused with an error that names it by its path
(`session.audio.input.format.rate`). What the values mean, and the rules between them, are in
`utils.realtime.settings`.
"""

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import config
from utils.errors import InvalidInputError

# OpenAI's names, as the tables that give them meaning are keyed.
Delay = Literal[tuple(config.LIVE_DELAYS)]  # type: ignore[valid-type]
Eagerness = Literal[tuple(config.REALTIME_EAGERNESS_SILENCE_MS)]  # type: ignore[valid-type]
# Tags of the tagged unions below; pydantic puts the tag in an error's location, the path does not.
_TAGS = frozenset({"audio/pcm", "audio/pcmu", "audio/pcma", "server_vad", "semantic_vad"})
_SHOWN_CHARS = 48
_MAX_EVENT_ID_CHARS = 128


class EventError(InvalidInputError):
    """A client event the session refuses; it is answered with an `error` event and the session goes on."""

    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        """Makes the error.

        Args:
            message: One line naming the field and what was wrong.
            code: OpenAI-style error code (`invalid_value`, `unknown_parameter`, ...).
            param: The field's path, when the error is about one.
        """
        super().__init__(message)
        self.code = code
        self.param = param
        self.event_id: str | None = None  # the refused event's own id, when it had one


# --- The declaration ------------------------------------------------------------------------------


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PcmFormat(_Closed):
    type: Literal["audio/pcm"]
    rate: Literal[24000] = 24000


class PcmuFormat(_Closed):
    type: Literal["audio/pcmu"]
    rate: Literal[8000] | None = None  # not in OpenAI's schema; telephony clients send it


class PcmaFormat(_Closed):
    type: Literal["audio/pcma"]
    rate: Literal[8000] | None = None


class Transcription(_Closed):
    model: str | None = None
    language: str | None = None
    languages: list[str] | None = None
    prompt: str | None = None
    keywords: list[str] | None = None
    delay: Delay | None = None
    numbers: str | None = None  # ours: "spoken" or "digits", as the job input's `numbers` (checked there)


_PADDING = config.REALTIME_PREFIX_PADDING_MS_BOUNDS
_SILENCE = config.REALTIME_SILENCE_DURATION_MS_BOUNDS
_IDLE = config.REALTIME_IDLE_TIMEOUT_MS_BOUNDS


class ServerVad(_Closed):
    type: Literal["server_vad"]
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=_PADDING[0], le=_PADDING[1])
    silence_duration_ms: int | None = Field(None, ge=_SILENCE[0], le=_SILENCE[1])
    idle_timeout_ms: int | None = Field(None, ge=_IDLE[0], le=_IDLE[1])
    create_response: bool | None = None  # a conversation's settings: accepted, nothing to respond
    interrupt_response: bool | None = None


class SemanticVad(_Closed):
    type: Literal["semantic_vad"]
    eagerness: Eagerness | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class NoiseReduction(_Closed):
    type: Literal["near_field", "far_field"] | None = None
    strength: float | None = Field(None, ge=0.0, le=1.0)


class AudioInput(_Closed):
    format: PcmFormat | PcmuFormat | PcmaFormat | None = Field(None, discriminator="type")
    transcription: Transcription | None = None
    turn_detection: ServerVad | SemanticVad | None = Field(None, discriminator="type")
    noise_reduction: NoiseReduction | None = None


class SessionAudio(_Closed):
    input: AudioInput | None = None


class TranscriptionSession(_Closed):
    type: Literal["transcription"]
    audio: SessionAudio | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None


class _Event(_Closed):
    event_id: str | None = None


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: TranscriptionSession


class Append(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str


class Commit(_Event):
    type: Literal["input_audio_buffer.commit"]


class Clear(_Event):
    type: Literal["input_audio_buffer.clear"]


# The older (beta) shape of the same settings, flat under `session`.
class BetaTranscription(_Closed):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class BetaTurnDetection(_Closed):
    type: Literal["server_vad", "semantic_vad"] | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=_PADDING[0], le=_PADDING[1])
    silence_duration_ms: int | None = Field(None, ge=_SILENCE[0], le=_SILENCE[1])
    eagerness: Eagerness | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class BetaNoiseReduction(_Closed):
    type: Literal["near_field", "far_field"] | None = None


class BetaSecretExpiry(_Closed):
    anchor: Literal["created_at"] | None = None
    seconds: int | None = None


class BetaSecret(_Closed):  # for ephemeral keys, which this server does not issue: accepted, unused
    expires_at: BetaSecretExpiry | None = None


class BetaSession(_Closed):
    input_audio_format: Literal["pcm16", "g711_ulaw", "g711_alaw"] | None = None
    input_audio_transcription: BetaTranscription | None = None
    turn_detection: BetaTurnDetection | None = None
    input_audio_noise_reduction: BetaNoiseReduction | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    client_secret: BetaSecret | None = None


class BetaSessionUpdate(_Event):
    type: Literal["transcription_session.update"]
    session: BetaSession


ClientEvent = SessionUpdate | BetaSessionUpdate | Append | Commit | Clear
EVENTS: dict[str, type[ClientEvent]] = {
    "session.update": SessionUpdate,
    "transcription_session.update": BetaSessionUpdate,
    "input_audio_buffer.append": Append,
    "input_audio_buffer.commit": Commit,
    "input_audio_buffer.clear": Clear,
}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}


# --- Reading an event -----------------------------------------------------------------------------


def _shown(value: Any) -> str:
    """A client's value, short, for a message."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}..."


def _path(location: tuple[int | str, ...]) -> str:
    """A pydantic location as the field's path: `session.audio.input.transcription.keywords[0]`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in _TAGS:
            path += f".{part}" if path else part
    return path


def _refusal(error: ValidationError) -> EventError:
    """The first problem pydantic found, as an error that names the field."""
    first = error.errors(include_url=False)[0]
    path = _path(first["loc"])
    kind, context = first["type"], first.get("ctx", {})
    if kind == "extra_forbidden":
        return EventError(f"{path} is not a known field", "unknown_parameter", path)
    if kind == "missing":
        return EventError(f"{path} is required", "missing_required_parameter", path)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = f"{path}.{context.get('discriminator', 'type').strip(chr(39))}"
        expected = context.get("expected_tags", "")
        got = f", got {_shown(context['tag'])}" if "tag" in context else ""
        return EventError(f"{field} must be one of {expected}{got}", "invalid_value", field)
    message = first["msg"]
    if message.startswith("Input should be"):
        message = f"{path} should be{message[len('Input should be') :]}"
    else:
        message = f"{path}: {message}"
    return EventError(f"{message}, got {_shown(first['input'])}", "invalid_value", path)


def parse_event(text: str) -> ClientEvent:
    """Reads one client event.

    Args:
        text: The WebSocket message's text.

    Returns:
        The event.

    Raises:
        EventError: Not JSON, not an object, an unknown or unserved event type, or a field that breaks the
            declaration (named by its path).
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise EventError("the event is not JSON: send one JSON object per message", "invalid_json") from None
    if not isinstance(data, dict):
        raise EventError(f"the event must be a JSON object, got {type(data).__name__}", "invalid_event")
    try:
        return _parse(data)
    except EventError as error:
        given_id = data.get("event_id")
        error.event_id = given_id[:_MAX_EVENT_ID_CHARS] if isinstance(given_id, str) else None
        raise


def _parse(data: dict[str, Any]) -> ClientEvent:
    """Reads an event's object."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise EventError("type is required: the event's type, a string", "missing_required_parameter", "type")
    declared = EVENTS.get(kind)
    if declared is None:
        served = ", ".join(EVENTS)
        raise EventError(
            f"event type {_shown(kind)} is not served: only transcription sessions are, which take {served}",
            "unknown_event",
            "type",
        )
    if kind == "session.update":
        session = data.get("session")
        if isinstance(session, dict) and session.get("type") not in (None, "transcription"):
            raise EventError(
                f'only transcription sessions are served: session.type must be "transcription", got '
                f"{_shown(session.get('type'))}",
                "invalid_value",
                "session.type",
            )
    try:
        return declared.model_validate(data)
    except ValidationError as error:
        raise _refusal(error) from None
