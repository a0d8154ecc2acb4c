"""A live session's effective settings, and how a client's update changes them.

`apply` takes a `session.update`'s declared settings (`protocol.TranscriptionSession`) over the current
ones: only the fields sent change, and a value the worker cannot take is refused whole, by its path. The
rules the other doors apply are theirs, reused: the model (any name while one model is served), the
language (checked against the model, never forced), the prompt (refused unless empty) and the keywords
(the queue's hotwords). `semantic_vad` is served as server VAD whose silence follows its eagerness
(`config.REALTIME_EAGERNESS_SILENCE_MS`).
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import config
from utils.asr import model as asr_model
from utils.contract import validation
from utils.errors import InvalidInputError, WorkerError
from utils.http import openai_params
from utils.realtime.audio_in import RATES
from utils.realtime.protocol import (
    BETA_FORMATS,
    BetaSession,
    EventError,
    NoiseReduction,
    SemanticVad,
    ServerVad,
    Transcription,
    TranscriptionSession,
)


@dataclass(frozen=True)
class Vad:
    """Turn detection as the session runs it (`semantic_vad` too: server VAD, silence by eagerness)."""

    type: str  # "server_vad" or "semantic_vad"
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    idle_timeout_ms: int | None = None
    eagerness: str | None = None
    create_response: bool = True
    interrupt_response: bool = True


@dataclass(frozen=True)
class TranscriptionSettings:
    """What the engine is asked for; `model` as configured."""

    model: str
    language: str | None = None
    languages: tuple[str, ...] | None = None
    keywords: tuple[str, ...] = ()
    delay: str = config.LIVE_DEFAULT_DELAY
    numbers: str = "spoken"  # or "digits": number words written as digits, as the job input's `numbers`


@dataclass(frozen=True)
class SessionSettings:
    """A session's whole effective configuration."""

    format_type: str
    transcription: TranscriptionSettings
    turn_detection: Vad | None
    noise_reduction: NoiseReduction | None = None
    include: tuple[str, ...] = ()

    @property
    def rate(self) -> int:
        """The input format's sample rate."""
        return RATES[self.format_type]


def server_vad(**given: Any) -> Vad:
    """Server VAD with OpenAI's defaults where a value is not given.

    Args:
        given: Values to set (None: the default).

    Returns:
        The settings.
    """
    from utils.realtime.turns import TurnSettings  # the defaults are OpenAI's, declared there

    defaults = TurnSettings()
    chosen = {name: value for name, value in given.items() if value is not None}
    return Vad(
        type="server_vad",
        threshold=chosen.get("threshold", defaults.threshold),
        prefix_padding_ms=chosen.get("prefix_padding_ms", defaults.prefix_padding_ms),
        silence_duration_ms=chosen.get("silence_duration_ms", defaults.silence_duration_ms),
        idle_timeout_ms=chosen.get("idle_timeout_ms", defaults.idle_timeout_ms),
        create_response=chosen.get("create_response", True),
        interrupt_response=chosen.get("interrupt_response", True),
    )


def semantic_vad(eagerness: str | None, create_response: bool | None, interrupt_response: bool | None) -> Vad:
    """Semantic VAD, served as server VAD whose silence follows `eagerness`.

    Args:
        eagerness: low, medium, high or auto (None: auto).
        create_response: Accepted and echoed; nothing responds in a transcription session.
        interrupt_response: Likewise.

    Returns:
        The settings.
    """
    chosen = eagerness or "auto"
    silence = config.REALTIME_EAGERNESS_SILENCE_MS[chosen]
    base = server_vad(silence_duration_ms=silence, create_response=create_response)
    flags = {"interrupt_response": interrupt_response} if interrupt_response is not None else {}
    return replace(base, type="semantic_vad", eagerness=chosen, **flags)


def default_settings() -> SessionSettings:
    """A new session's configuration: 24 kHz PCM, the default model and delay, server VAD.

    Returns:
        The settings.
    """
    return SessionSettings(
        format_type="audio/pcm",
        transcription=TranscriptionSettings(model=asr_model.served_models()[0]),
        turn_detection=server_vad(),
    )


def _renamed(error: WorkerError, old: str, new: str) -> EventError:
    """Another door's message about `old`, as an error about the field `new` (its path here)."""
    message = str(error)
    if message.startswith(old):
        message = new + message[len(old) :]
    param = new if not message.startswith(f"{new}[") else message.split(" ", 1)[0]
    return EventError(message, "invalid_value", param)


# The job input the queue's contract checks a session's transcription settings as: an uploaded file
# stands for the audio, so that only the fields sent are judged.
_LIVE_AUDIO = Path("live-session")


def _contract(
    path: str, model: str | None, language: str | None, keywords: list[str], as_field: str, numbers: str
) -> Any:
    """The queue's contract applied to a session's model, language, keywords (its hotwords) and numbers.

    Returns:
        The validated job request (`model`, `language`, `hotwords`, `numbers`).

    Raises:
        EventError: The contract's refusal, about the session's field (`as_field` for the language).
    """
    job_input: dict[str, Any] = {}
    if model is not None:
        job_input["model"] = model
    if language is not None:
        job_input["language"] = language
    if keywords:
        job_input["hotwords"] = keywords
    job_input["numbers"] = numbers
    try:
        return validation.parse_input(job_input, upload=_LIVE_AUDIO)
    except InvalidInputError as error:
        renames = {"hotwords": "keywords", "language": as_field, "model": "model", "numbers": "numbers"}
        for field, ours in renames.items():
            if str(error).startswith(field):
                raise _renamed(error, field, f"{path}.{ours}") from None
        raise EventError(str(error), "invalid_value", path) from None


def _transcription(current: TranscriptionSettings, given: Transcription, path: str) -> TranscriptionSettings:
    """The transcription settings after an update: the fields sent replace theirs (null: the default).
    The model, language and keywords are checked as the queue's contract checks them, the model named
    by the HTTP door's rule (any name while one model is served)."""
    sent = given.model_fields_set
    served = asr_model.served_models()
    if "model" in sent:
        requested = openai_params.job_model(given.model, [asr_model.model_id(name) for name in served])
    else:
        requested = current.model if len(served) > 1 else None
    if "prompt" in sent:
        try:
            openai_params.check_prompt(given.prompt or "")
        except InvalidInputError as error:
            raise _renamed(error, "prompt", f"{path}.prompt") from None
    language = given.language if "language" in sent else current.language
    keywords = (given.keywords or []) if "keywords" in sent else list(current.keywords)
    numbers = (given.numbers or "spoken") if "numbers" in sent else current.numbers
    checked = _contract(path, requested, language, keywords, "language", numbers)
    languages = current.languages
    if "languages" in sent:
        languages = None if given.languages is None else tuple(given.languages)
    if languages is not None:
        languages = tuple(
            _contract(path, requested, code, [], "languages", numbers).language for code in languages
        )
    delay = (given.delay or config.LIVE_DEFAULT_DELAY) if "delay" in sent else current.delay
    model = checked.model or served[0]
    return TranscriptionSettings(model, checked.language, languages, checked.hotwords, delay, checked.numbers)


def _turn_detection(current: Vad | None, given: ServerVad | SemanticVad | None) -> Vad | None:
    """Turn detection after an update: the same type keeps the values not sent; another starts afresh."""
    if given is None:
        return None
    sent = {name: getattr(given, name) for name in given.model_fields_set if name != "type"}
    if isinstance(given, SemanticVad):
        kept = current if current is not None and current.type == "semantic_vad" else None
        return semantic_vad(
            sent.get("eagerness", kept.eagerness if kept else None),
            sent.get("create_response", kept.create_response if kept else None),
            sent.get("interrupt_response", kept.interrupt_response if kept else None),
        )
    if current is not None and current.type == "server_vad":
        kept = {name: value for name, value in vars(current).items() if name not in ("type", "eagerness")}
        return server_vad(**{**kept, **{name: value for name, value in sent.items() if value is not None}})
    return server_vad(**sent)


def _include(values: list[str] | None, path: str) -> tuple[str, ...]:
    if values:
        raise EventError(
            f"{path} is not supported: {openai_params.REFUSED['include']}", "invalid_value", f"{path}[0]"
        )
    return ()


def apply(current: SessionSettings, session: TranscriptionSession) -> SessionSettings:
    """A `session.update`'s settings over the current ones; only the fields sent change.

    Args:
        current: The session's settings.
        session: The update's `session`.

    Returns:
        The new settings (the current ones are left as they are).

    Raises:
        EventError: A value the session cannot take, named by its path; nothing is changed.
    """
    changes: dict[str, Any] = {}
    if "include" in session.model_fields_set:
        changes["include"] = _include(session.include, "session.include")
    audio_input = session.audio.input if session.audio is not None else None
    if audio_input is None:
        return replace(current, **changes)
    sent = audio_input.model_fields_set
    where = "session.audio.input"
    if "format" in sent:
        if audio_input.format is None:
            raise EventError(f"{where}.format cannot be null", "invalid_value", f"{where}.format")
        changes["format_type"] = audio_input.format.type
    if "transcription" in sent:
        if audio_input.transcription is None:
            message = f"{where}.transcription cannot be null: a transcription session always transcribes"
            raise EventError(message, "invalid_value", f"{where}.transcription")
        changes["transcription"] = _transcription(
            current.transcription, audio_input.transcription, f"{where}.transcription"
        )
    if "turn_detection" in sent:
        changes["turn_detection"] = _turn_detection(current.turn_detection, audio_input.turn_detection)
    if "noise_reduction" in sent:
        changes["noise_reduction"] = audio_input.noise_reduction
    return replace(current, **changes)


def from_beta(session: BetaSession) -> TranscriptionSession:
    """The older `transcription_session.update` settings in today's shape (the same rules then apply).

    Args:
        session: The older event's `session`.

    Returns:
        The same settings as a transcription session.
    """
    sent = session.model_fields_set
    audio_input: dict[str, Any] = {}
    if "input_audio_format" in sent and session.input_audio_format is not None:
        audio_input["format"] = {"type": BETA_FORMATS[session.input_audio_format]}
    if "input_audio_transcription" in sent and session.input_audio_transcription is not None:
        audio_input["transcription"] = session.input_audio_transcription.model_dump(exclude_unset=True)
    if "turn_detection" in sent:
        given = session.turn_detection
        audio_input["turn_detection"] = None
        if given is not None:
            fields = given.model_dump(exclude_unset=True)
            kind = fields.pop("type", None) or "server_vad"
            if kind == "semantic_vad":
                fields = {key: fields[key] for key in fields if key in SemanticVad.model_fields}
            else:
                fields.pop("eagerness", None)
            audio_input["turn_detection"] = {"type": kind, **fields}
    if "input_audio_noise_reduction" in sent:
        given_noise = session.input_audio_noise_reduction
        audio_input["noise_reduction"] = None if given_noise is None else given_noise.model_dump()
    shape: dict[str, Any] = {"type": "transcription", "audio": {"input": audio_input}}
    if "include" in sent:
        shape["include"] = session.include
    return TranscriptionSession.model_validate(shape)


# Today's paths and the older shape's names for the same fields (longest first).
_BETA_PATHS = (
    ("session.audio.input.transcription", "session.input_audio_transcription"),
    ("session.audio.input.noise_reduction", "session.input_audio_noise_reduction"),
    ("session.audio.input.turn_detection", "session.turn_detection"),
    ("session.audio.input.format", "session.input_audio_format"),
)


def apply_beta(current: SessionSettings, session: BetaSession) -> SessionSettings:
    """An older `transcription_session.update` over the current settings, its refusals naming the
    fields as that event does.

    Args:
        current: The session's settings.
        session: The older event's `session`.

    Returns:
        The new settings.

    Raises:
        EventError: A value the session cannot take, named by its path in the older shape.
    """
    try:
        return apply(current, from_beta(session))
    except EventError as error:
        message, param = str(error), error.param
        for today, older in _BETA_PATHS:
            message = message.replace(today, older)
            if param is not None and param.startswith(today):
                param = older + param[len(today) :]
        raise EventError(message, error.code, param) from None
