"""Checks `job["input"]` against the input contract (`utils.contract.job_input`, whose models do the checking)
and turns it into a `JobRequest`.

Every problem raises `InvalidInputError` (or `PayloadTooLargeError`) with a message that names the
field and what was wrong, so a client can fix its request without reading our code. When an input has
several problems, the first is reported: unknown fields of an object before anything inside it, then
the audio's form (one source), then the fields in their declared order, each with the rules about it.
"""

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

import config
from utils.contract.fields import PAYLOAD_TOO_LARGE, RULE, Says
from utils.contract.job_input import AudioItemInput, JobInput, SubtitleOptionsInput
from utils.errors import InvalidInputError, PayloadTooLargeError, WorkerError

# The HTTP server's uploaded file: a source only the server gives (a path it wrote), never a client.
UPLOAD_FIELD = "file"
ALLOWED_FIELDS = frozenset(JobInput.model_fields)
ALLOWED_ITEM_FIELDS = frozenset(AudioItemInput.model_fields)
# What a value's problem says after its place's name, by pydantic's error type, unless its field `Says`
# otherwise; numbers, choices, unknown fields and the rules are worded below.
_USUAL = {
    "bool_type": "must be true or false, got {got}",
    "string_type": "must be a string, got {got}",
    "model_type": "must be an object, got {got}",
    "list_type": "must be a list, got {got}",
    "string_too_short": "is empty",
    # A bounded string is read as text: a lone surrogate (no UTF-8 output can hold it) is refused.
    "string_unicode": "is not valid Unicode text (a lone surrogate: was an emoji cut in half?)",
    "string_too_long": "is {actual_length} characters; the limit is {max_length}",
    "too_short": "is an empty list",
    "too_long": "has {actual_length} items; the limit is {max_length}",
}
_NUMBER_ERRORS = frozenset({"int_type", "float_type", "greater_than_equal", "less_than_equal"})


@dataclass(frozen=True)
class AudioItem:
    """One audio to transcribe: where it comes from, and the client's id for it (batches)."""

    source_field: str
    source: str
    id: str | None = None


@dataclass(frozen=True)
class SubtitleOptions:
    """How subtitle cues are shaped: characters a line, lines a cue, seconds a cue."""

    max_line_chars: int
    max_lines: int
    max_cue_seconds: float

    @classmethod
    def defaults(cls) -> "SubtitleOptions":
        """The worker's configured defaults.

        Returns:
            Options from `config.SUBTITLE_MAX_LINE_CHARS`, `SUBTITLE_MAX_LINES`, `SUBTITLE_MAX_CUE_SECONDS`.
        """
        return cls(config.SUBTITLE_MAX_LINE_CHARS, config.SUBTITLE_MAX_LINES, config.SUBTITLE_MAX_CUE_SECONDS)


@dataclass(frozen=True)
class JobRequest:
    """A validated job: the audio items and what to return for each."""

    items: tuple[AudioItem, ...]
    is_batch: bool
    timestamp_kinds: frozenset[str]
    output_formats: frozenset[str]
    output_url: str | None = None
    subtitles: SubtitleOptions | None = None
    confidence: bool = False
    # Phrases to favour while decoding (whitespace collapsed), and the boost per matched token.
    hotwords: tuple[str, ...] = ()
    hotword_weight: float = 0.0
    diarize: bool = False
    # At most this many speakers (None: as many as the diarizer finds).
    max_speakers: int | None = None
    channels: str = "mix"
    # The language the caller expects (an ISO 639-1 code the model transcribes), or None.
    language: str | None = None
    # Only the speech regions voice-activity detection finds go to the model.
    vad: bool = False
    # The served model to use, as configured (None: the default).
    model: str | None = None
    # "spoken" (as the model writes them) or "digits".
    numbers: str = "spoken"


def _type_name(value: Any) -> str:
    """Names a JSON value's type the way a client thinks of it."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown_number(value: float) -> str:
    """A number as a message shows it (a whole number of any size, which `:g` cannot always format)."""
    if isinstance(value, int) and not -(10**15) < value < 10**15:
        return "a number too large to show"
    return f"{value:g}"


def _reject_deep_nesting(job_input: dict[str, Any]) -> None:
    """Refuses a field nested deeper than `MAX_JSON_DEPTH` (before anything recurses into it), naming it."""
    for name, value in job_input.items():
        stack = [(value, 1)]
        while stack:
            current, depth = stack.pop()
            if depth > config.MAX_JSON_DEPTH:
                shown = _shorten(str(name), config.MAX_ECHOED_NAME_CHARS)
                limit = config.MAX_JSON_DEPTH
                raise InvalidInputError(f"{shown} is nested too deeply: at most {limit} levels")
            if isinstance(current, dict):
                stack.extend((child, depth + 1) for child in current.values())
            elif isinstance(current, list):
                stack.extend((child, depth + 1) for child in current)


def _shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _inner(annotation: Any, wanted: typing.Callable[[Any], bool]) -> Any:
    """The first type inside `annotation` (itself included) that is `wanted`, or None."""
    if wanted(annotation):
        return annotation
    for argument in typing.get_args(annotation):
        found = _inner(argument, wanted)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The input model of the object at `loc` (the whole input, a batch item, the subtitle options)."""
    model: type[BaseModel] = JobInput
    for part in loc:
        if isinstance(part, str):
            model = _inner(
                model.model_fields[part].annotation,
                lambda kind: (
                    isinstance(kind, type)
                    and not isinstance(kind, types.GenericAlias)
                    and issubclass(kind, BaseModel)
                ),
            )
    return model


def _where(loc: tuple[str | int, ...]) -> str:
    """A place in the input as messages name it: `input`, `audios[0].id`, `subtitle_options.max_lines`."""
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else part
    return where or "input"


def _unknown(loc: tuple[str | int, ...], names: list[str]) -> str:
    """The message for unknown fields of the object at `loc`, naming a few of them, each cut short."""
    unknown = sorted(names)
    # repr: a name is the client's text and may hold line breaks; the message stays one line. Only the
    # first few names are echoed, each cut short, so that a flood of keys cannot flood the answer.
    shown = [_shorten(repr(key), config.MAX_ECHOED_NAME_CHARS) for key in unknown[: config.MAX_ECHOED_NAMES]]
    more = len(unknown) - len(shown)
    names_shown = ", ".join(shown) + (f" and {more} more" if more else "")
    allowed = ", ".join(sorted(_model_at(loc).model_fields))
    return f"{_where(loc)} has unknown field(s) {names_shown}; allowed: {allowed}"


def _field(loc: tuple[str | int, ...]) -> tuple[FieldInfo, bool]:
    """The declared field a place belongs to, and whether the place is inside it (an item of its list)."""
    named = max(index for index, part in enumerate(loc) if isinstance(part, str))
    return _model_at(loc[:named]).model_fields[loc[named]], named < len(loc) - 1


def _value_message(error: dict[str, Any]) -> str:
    """The message for a value pydantic refused (type, bound, length or choice)."""
    loc, kind, value, context = error["loc"], error["type"], error["input"], error.get("ctx", {})
    declared, inside = _field(loc)
    says = next((item for item in declared.metadata if isinstance(item, Says)), Says())
    got = _type_name(value)
    if isinstance(value, str) and kind in ("too_short", "too_long"):
        kind = f"string_{kind}"  # the same bound, named by pydantic as a string's when the type says str
    if not inside and kind in says.messages:
        return f"{_where(loc)} {says.messages[kind].format(got=got, **context)}"
    literal = _inner(declared.annotation, lambda kind: typing.get_origin(kind) is typing.Literal)
    if kind == "string_unicode" and literal is not None:
        kind = "literal_error"  # a name no choice can be
    if kind == "literal_error":
        choices = typing.get_args(
            _inner(declared.annotation, lambda t: typing.get_origin(t) is typing.Literal)
        )
        if inside:  # an item of a list of names
            shown = repr(value) if isinstance(value, str) else got
            return f"{_where(loc[:-1])} has unknown value {shown}; allowed: {', '.join(choices)}"
        shown = repr(_shorten(value, config.MAX_ECHOED_NAME_CHARS)) if isinstance(value, str) else got
        return f"{_where(loc)} must be one of {', '.join(map(repr, choices))}, got {shown}"
    if kind in _NUMBER_ERRORS:
        low = next(item.ge for item in declared.metadata if hasattr(item, "ge"))
        high = next(item.le for item in declared.metadata if hasattr(item, "le"))
        number = "a whole number" if declared.annotation is int else "a number"
        # A float field refuses a whole number too large for a float; a whole number field, any fraction.
        too_large = kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)
        shown = got if kind.endswith("_type") and not too_large else _shown_number(value)
        return f"{_where(loc)} must be {number} from {low:g} to {high:g}, got {shown}"
    if kind in _USUAL:
        if kind == "string_too_long":
            context = {**context, "actual_length": len(value)}
        return f"{_where(loc)} {_USUAL[kind].format(got=got, **context)}"
    return f"{_where(loc)} is not valid: {error['msg']}"


def _object_at(data: Any, loc: tuple[str | int, ...]) -> Any:
    """The value at `loc` in the input as sent, or None when the path leads nowhere."""
    for part in loc:
        try:
            data = data[part] if isinstance(data, dict | list) else None
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unreadable_keys(error: dict[str, Any], job_input: Any) -> list[str]:
    """The unknown keys of the object an error is about, when pydantic could not read a key as text.

    Pydantic stops at a key that is a lone surrogate (valid JSON, no Unicode text) before it names any
    unknown field, and reports it at the object, not as an unknown field.
    """
    if error["type"] != "string_unicode" or (error["loc"] and _model_at(error["loc"]) is None):
        return []
    sent = _object_at(job_input, error["loc"])
    if not isinstance(sent, dict):
        return []
    return [key for key in sent if key not in _model_at(error["loc"]).model_fields]


def _refusal(errors: list[dict[str, Any]], job_input: Any = None) -> WorkerError:
    """The error a client sees for pydantic's errors: the first problem, in the contract's words."""
    first = errors[0]
    unknown: dict[tuple[str | int, ...], list[str]] = {}
    for error in errors:
        if error["type"] == "extra_forbidden":
            unknown.setdefault(error["loc"][:-1], []).append(error["loc"][-1])
        elif keys := _unreadable_keys(error, job_input):
            unknown.setdefault(error["loc"], []).extend(keys)
    # The unknown fields of an object come before any other problem inside it.
    for loc in sorted(unknown, key=len):
        if first["loc"][: len(loc)] == loc:
            return InvalidInputError(_unknown(loc, unknown[loc]))
    if first["type"] == RULE:
        context = first["ctx"]
        message = context["text"] if context["whole"] else f"{_where(first['loc'])} {context['text']}"
        return (PayloadTooLargeError if context["too_large"] else InvalidInputError)(message)
    error_class = PayloadTooLargeError if first["type"] == PAYLOAD_TOO_LARGE else InvalidInputError
    return error_class(_value_message(first))


def _item(source: AudioItemInput | JobInput, item_id: str | None = None) -> AudioItem:
    """The one audio source of the input or of a batch item."""
    if source.audio_base64 is not None:
        return AudioItem("audio_base64", source.audio_base64, item_id)
    return AudioItem("audio_url", source.audio_url, item_id)


def _subtitles(options: SubtitleOptionsInput) -> SubtitleOptions:
    """The subtitle options sent, the worker's defaults (read now) for the others."""
    return SubtitleOptions(
        **{**vars(SubtitleOptions.defaults()), **options.model_dump(include=options.model_fields_set)}
    )


def parse_input(job_input: Any, upload: Path | None = None) -> JobRequest:
    """Validates a job's input against the contract.

    Args:
        job_input: The value of `job["input"]` as RunPod delivers it.
        upload: A file the HTTP server received for this job; it is then the job's one audio, and the
            input must name no other.

    Returns:
        The validated request.

    Raises:
        InvalidInputError: Missing, doubled, unknown or mistyped fields.
        PayloadTooLargeError: Base64 audio over the configured cap.
    """
    if not isinstance(job_input, dict):
        raise InvalidInputError(f"input must be a JSON object, got {_type_name(job_input)}")
    _reject_deep_nesting(job_input)  # before anything recurses into it
    try:
        declared = JobInput.model_validate(job_input, context={"upload": upload})
    except ValidationError as error:
        raise _refusal(error.errors(include_url=False), job_input) from None
    if upload is not None:
        items, is_batch = (AudioItem(UPLOAD_FIELD, str(upload)),), False
    elif declared.audios is not None:
        items, is_batch = tuple(_item(item, item.id) for item in declared.audios), True
    else:
        items, is_batch = (_item(declared),), False
    hotwords = tuple(declared.hotwords or ())
    weight = declared.hotword_weight
    if weight is None:
        weight = config.HOTWORD_WEIGHT if hotwords else 0.0
    return JobRequest(
        items,
        is_batch,
        frozenset(declared.timestamps),
        frozenset(declared.output_format),
        declared.output_url,
        None if declared.subtitle_options is None else _subtitles(declared.subtitle_options),
        declared.confidence,
        hotwords,
        float(weight),
        declared.diarize,
        declared.max_speakers,
        declared.channels,
        declared.language,
        declared.vad,
        declared.model,
        declared.numbers,
    )
