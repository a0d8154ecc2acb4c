"""Checks `job["input"]` against the input contract (declared in `utils.contract.job_input`) and turns it into
a `JobRequest`.

Every problem raises `InvalidInputError` (or `PayloadTooLargeError`) with a message that names the
field and what was wrong, so a client can fix its request without reading our code.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import config
from utils.asr import model as asr_model
from utils.asr.records import TIMESTAMP_KINDS
from utils.contract.job_input import (
    CHANNEL_MODES,
    OUTPUT_FORMATS,
    AudioItemInput,
    JobInput,
    SubtitleOptionsInput,
)
from utils.errors import InvalidInputError, PayloadTooLargeError
from utils.text import language

SOURCE_FIELDS = ("audio_base64", "audio_url")
# The HTTP server's uploaded file: a source only the server gives (a path it wrote), never a client.
UPLOAD_FIELD = "file"
ALLOWED_FIELDS = frozenset(JobInput.model_fields)
ALLOWED_ITEM_FIELDS = frozenset(AudioItemInput.model_fields)
SUBTITLE_OPTION_FIELDS = frozenset(SubtitleOptionsInput.model_fields)
# `timestamps: true` means the two kinds most clients want.
DEFAULT_TIMESTAMP_KINDS = frozenset({"word", "segment"})
_DATA_URI_PREFIX = re.compile(r"^data:[\w.+/-]*(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


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


def _type_name(value: Any) -> str:
    """Names a JSON value's type the way a client thinks of it."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _pick(value: Any, field: str, allowed: tuple[str, ...]) -> frozenset[str]:
    """Validates a list of names drawn from `allowed` (duplicates collapse)."""
    if not isinstance(value, list):
        raise InvalidInputError(f"{field} must be a list of {', '.join(allowed)}; got {_type_name(value)}")
    for item in value:
        if not isinstance(item, str) or item not in allowed:
            shown = repr(item) if isinstance(item, str) else _type_name(item)
            raise InvalidInputError(f"{field} has unknown value {shown}; allowed: {', '.join(allowed)}")
    return frozenset(value)


def parse_timestamps(value: Any) -> frozenset[str]:
    """Validates the `timestamps` field.

    Args:
        value: `true`/`false`, or a list drawn from "word", "segment", "char".

    Returns:
        The set of timestamp kinds to return (empty for none).

    Raises:
        InvalidInputError: The value has the wrong type or names an unknown kind.
    """
    if isinstance(value, bool):
        return DEFAULT_TIMESTAMP_KINDS if value else frozenset()
    if not isinstance(value, list):
        raise InvalidInputError(
            f"timestamps must be true, false or a list of {', '.join(TIMESTAMP_KINDS)}; "
            f"got {_type_name(value)}"
        )
    return _pick(value, "timestamps", TIMESTAMP_KINDS)


def parse_output_format(value: Any) -> frozenset[str]:
    """Validates `output_format`: one of "json", "text", "srt", "vtt", or a non-empty list of them.

    Args:
        value: The field's value.

    Returns:
        The set of formats.

    Raises:
        InvalidInputError: Wrong type, unknown or no format.
    """
    formats = _pick([value] if isinstance(value, str) else value, "output_format", OUTPUT_FORMATS)
    if not formats:
        raise InvalidInputError(
            f"output_format is an empty list; use one or more of {', '.join(OUTPUT_FORMATS)}"
        )
    return formats


def _shown_number(value: float) -> str:
    """A number as a message shows it (a whole number of any size, which `:g` cannot always format)."""
    if isinstance(value, int) and not -(10**15) < value < 10**15:
        return "a number too large to show"
    return f"{value:g}"


def _bounded_number(value: Any, field: str, bounds: tuple[float, float], whole: bool) -> float:
    """Validates a number within `bounds` (inclusive); `whole` asks for an integer."""
    low, high = bounds
    kind = "a whole number" if whole else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
    ):
        raise InvalidInputError(f"{field} must be {kind} from {low:g} to {high:g}, got {_type_name(value)}")
    if not low <= value <= high:
        raise InvalidInputError(
            f"{field} must be {kind} from {low:g} to {high:g}, got {_shown_number(value)}"
        )
    return value


def parse_subtitle_options(value: Any) -> SubtitleOptions:
    """Validates `subtitle_options`: an object with any of max_line_chars, max_lines, max_cue_seconds.

    Args:
        value: The field's value.

    Returns:
        The options, the worker's defaults where a key is absent.

    Raises:
        InvalidInputError: Not an object, an unknown key, or a value of the wrong type or out of bounds.
    """
    if not isinstance(value, dict):
        raise InvalidInputError(f"subtitle_options must be an object, got {_type_name(value)}")
    defaults = SubtitleOptions.defaults()
    _reject_unknown(value, SUBTITLE_OPTION_FIELDS, "subtitle_options")
    bounds = {
        "max_line_chars": (config.SUBTITLE_LINE_CHARS_BOUNDS, True),
        "max_lines": (config.SUBTITLE_LINES_BOUNDS, True),
        "max_cue_seconds": (config.SUBTITLE_CUE_SECONDS_BOUNDS, False),
    }
    chosen = {
        key: _bounded_number(value[key], f"subtitle_options.{key}", *bounds[key]) if key in value else default
        for key, default in vars(defaults).items()
    }
    return SubtitleOptions(**chosen)


def parse_hotwords(value: Any) -> tuple[str, ...]:
    """Validates `hotwords`: a list of 1 to `MAX_HOTWORDS` phrases of at most `MAX_HOTWORD_CHARS`.

    Args:
        value: The field's value.

    Returns:
        The phrases, whitespace collapsed, duplicates dropped, in order.

    Raises:
        InvalidInputError: Not a list, empty, too many, or a phrase that is not text, blank or too long.
    """
    if not isinstance(value, list):
        raise InvalidInputError(f"hotwords must be a list of phrases, got {_type_name(value)}")
    if not 1 <= len(value) <= config.MAX_HOTWORDS:
        raise InvalidInputError(f"hotwords must hold 1 to {config.MAX_HOTWORDS} phrases, got {len(value)}")
    phrases: list[str] = []
    for index, phrase in enumerate(value):
        if not isinstance(phrase, str):
            raise InvalidInputError(f"hotwords[{index}] must be a string, got {_type_name(phrase)}")
        if not _is_text(phrase):
            raise InvalidInputError(f"hotwords[{index}] must be valid Unicode text")
        collapsed = " ".join(phrase.split())
        if not collapsed:
            raise InvalidInputError(f"hotwords[{index}] is blank")
        if len(collapsed) > config.MAX_HOTWORD_CHARS:
            raise InvalidInputError(
                f"hotwords[{index}] is {len(collapsed)} characters; at most {config.MAX_HOTWORD_CHARS}"
            )
        if collapsed not in phrases:
            phrases.append(collapsed)
    return tuple(phrases)


def _parse_bool(job_input: dict[str, Any], field: str) -> bool:
    """Validates an optional true/false field (absent: false)."""
    value = job_input.get(field, False)
    if not isinstance(value, bool):
        raise InvalidInputError(f"{field} must be true or false, got {_type_name(value)}")
    return value


def parse_speakers(job_input: dict[str, Any]) -> tuple[bool, int | None, str]:
    """Validates `diarize`, `max_speakers` and `channels`.

    Args:
        job_input: The job's input object.

    Returns:
        Whether to diarize, the speaker limit (None: none) and the channel mode.

    Raises:
        InvalidInputError: A wrong type or value, or `max_speakers` without `diarize`.
    """
    diarize = _parse_bool(job_input, "diarize")
    max_speakers = None
    if "max_speakers" in job_input:
        if not diarize:
            raise InvalidInputError("max_speakers needs diarize: true")
        bounds = (1, config.MAX_SPEAKERS)
        max_speakers = int(_bounded_number(job_input["max_speakers"], "max_speakers", bounds, True))
    channels = job_input.get("channels", "mix")
    if not isinstance(channels, str) or channels not in CHANNEL_MODES:
        shown = repr(_shorten(channels, config.MAX_ECHOED_NAME_CHARS)) if isinstance(channels, str) else None
        allowed = ", ".join(map(repr, CHANNEL_MODES))
        raise InvalidInputError(f"channels must be one of {allowed}, got {shown or _type_name(channels)}")
    return diarize, max_speakers, channels


def _parse_base64(value: Any, field: str) -> str:
    """Checks an `audio_base64` value and strips an optional `data:<mime>;base64,` prefix."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string, got {_type_name(value)}")
    if len(value) > config.MAX_BASE64_CHARS:
        raise PayloadTooLargeError(
            f"{field} is {len(value)} characters; the limit is {config.MAX_BASE64_CHARS}. "
            "Upload larger files and send audio_url instead"
        )
    encoded = _DATA_URI_PREFIX.sub("", value, count=1)
    if encoded[:5].lower() == "data:":
        raise InvalidInputError(f"{field} has a malformed data: prefix; use data:<mime type>;base64,<data>")
    if not encoded.strip():
        raise InvalidInputError(f"{field} is empty")
    return encoded


def parse_url(value: Any, field: str) -> str:
    """Checks that a URL field is a non-empty string of sane length (the scheme is checked on use).

    Args:
        value: The field's value.
        field: The field's name, for messages.

    Returns:
        The URL without surrounding whitespace.

    Raises:
        InvalidInputError: Not a string, empty or too long.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string, got {_type_name(value)}")
    url = value.strip()
    if not url:
        raise InvalidInputError(f"{field} is empty")
    if len(url) > config.MAX_URL_CHARS:
        raise InvalidInputError(f"{field} is {len(url)} characters; the limit is {config.MAX_URL_CHARS}")
    return url


def _parse_source(container: dict[str, Any], where: str) -> tuple[str, str]:
    """Finds the one audio source in `container` and validates it; `where` prefixes field names."""
    given = [name for name in SOURCE_FIELDS if name in container]
    if not given:
        raise InvalidInputError(f"{where or 'input'} needs one of audio_base64 or audio_url")
    if len(given) > 1:
        raise InvalidInputError(f"{where or 'input'} has both audio_base64 and audio_url; send exactly one")
    field = given[0]
    name = f"{where}.{field}" if where else field
    value = container[field]
    return field, _parse_base64(value, name) if field == "audio_base64" else parse_url(value, name)


def _reject_unknown(container: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    """Rejects keys outside `allowed`, naming them, so a typo is an error rather than ignored."""
    unknown = sorted(key for key in container if key not in allowed)
    if not unknown:
        return
    # repr: a name is the client's text and may hold line breaks; the message stays one line. Only the
    # first few names are echoed, each cut short, so that a flood of keys cannot flood the answer.
    shown = [_shorten(repr(key), config.MAX_ECHOED_NAME_CHARS) for key in unknown[: config.MAX_ECHOED_NAMES]]
    more = len(unknown) - len(shown)
    names = ", ".join(shown) + (f" and {more} more" if more else "")
    raise InvalidInputError(f"{where} has unknown field(s) {names}; allowed: {', '.join(sorted(allowed))}")


def _reject_deep_nesting(job_input: dict[str, Any]) -> None:
    """Refuses a field nested deeper than `MAX_JSON_DEPTH` (before anything recurses into it), naming it."""
    for name, value in job_input.items():
        stack = [(value, 1)]
        while stack:
            current, depth = stack.pop()
            if depth > config.MAX_JSON_DEPTH:
                raise InvalidInputError(
                    f"{name} is nested too deeply: at most {config.MAX_JSON_DEPTH} levels"
                )
            if isinstance(current, dict):
                stack.extend((child, depth + 1) for child in current.values())
            elif isinstance(current, list):
                stack.extend((child, depth + 1) for child in current)


def _shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_text(value: str) -> bool:
    """Whether a string is valid Unicode text (no lone surrogates, which no UTF-8 output can hold)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_items(value: Any) -> tuple[AudioItem, ...]:
    """Validates the `audios` list of a batch job."""
    if not isinstance(value, list):
        raise InvalidInputError(f"audios must be a list of objects, got {_type_name(value)}")
    if not value:
        raise InvalidInputError("audios is an empty list")
    if len(value) > config.MAX_BATCH_ITEMS:
        raise InvalidInputError(f"audios has {len(value)} items; the limit is {config.MAX_BATCH_ITEMS}")
    items = []
    for index, entry in enumerate(value):
        where = f"audios[{index}]"
        if not isinstance(entry, dict):
            raise InvalidInputError(f"{where} must be an object, got {_type_name(entry)}")
        _reject_unknown(entry, ALLOWED_ITEM_FIELDS, where)
        item_id = entry.get("id")
        if item_id is not None and (not isinstance(item_id, str) or len(item_id) > config.MAX_ITEM_ID_CHARS):
            raise InvalidInputError(
                f"{where}.id must be a string of at most {config.MAX_ITEM_ID_CHARS} characters"
            )
        if item_id is not None and not _is_text(item_id):
            raise InvalidInputError(
                f"{where}.id is not valid Unicode text (a lone surrogate: was an emoji cut in half?)"
            )
        field, source = _parse_source(entry, where)
        items.append(AudioItem(field, source, item_id))
    total = sum(len(item.source) for item in items if item.source_field == "audio_base64")
    if total > config.MAX_BASE64_CHARS:
        raise PayloadTooLargeError(
            f"audios carry {total} base64 characters in all; the limit is {config.MAX_BASE64_CHARS}. "
            "Send large files as audio_url"
        )
    return tuple(items)


def parse_language(value: Any, model: str | None) -> str:
    """Checks `language` against the languages of the model the job uses.

    Args:
        value: The field's value.
        model: The served model the job uses, as configured; None: the default.

    Returns:
        The ISO 639-1 code, lower case, without a region.

    Raises:
        InvalidInputError: Not a string, or not a language the model transcribes.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"language must be a string, got {_type_name(value)}")
    code = language.normalized(value)
    served = asr_model.served_models()
    chosen = model or served[0]
    known = asr_model.languages(chosen)
    if code not in known:
        shown = value[: config.MAX_ECHOED_NAME_CHARS]
        which = "the model" if len(served) == 1 else f"model {asr_model.model_id(chosen)!r}"
        raise InvalidInputError(
            f"language {shown!r} is not one {which} transcribes ({', '.join(known)}); "
            "it cannot be forced to a language anyway: leave language out to have it detected"
        )
    return code


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
    _reject_unknown(job_input, ALLOWED_FIELDS, "input")
    _reject_deep_nesting(job_input)
    if upload is not None:
        given = [name for name in (*SOURCE_FIELDS, "audios") if name in job_input]
        if given:
            raise InvalidInputError(f"{given[0]} cannot be sent with an uploaded file; send one audio")
        items, is_batch = (AudioItem(UPLOAD_FIELD, str(upload)),), False
    elif "audios" in job_input:
        if any(field in job_input for field in SOURCE_FIELDS):
            raise InvalidInputError(
                "input has both audios and a single audio_base64/audio_url; send one form"
            )
        items, is_batch = _parse_items(job_input["audios"]), True
    else:
        items, is_batch = (AudioItem(*_parse_source(job_input, "")),), False
    kinds = parse_timestamps(job_input.get("timestamps", False))
    formats = parse_output_format(job_input.get("output_format", "json"))
    if kinds and "json" not in formats:
        raise InvalidInputError(
            'timestamps are returned in the "json" output format; add "json" to output_format'
        )
    output_url = parse_url(job_input["output_url"], "output_url") if "output_url" in job_input else None
    subtitles = None
    if "subtitle_options" in job_input:
        if not formats & {"srt", "vtt"}:
            raise InvalidInputError('subtitle_options shape "srt" and "vtt" output; add one to output_format')
        subtitles = parse_subtitle_options(job_input["subtitle_options"])
    confidence = _parse_bool(job_input, "confidence")
    if confidence and "json" not in formats:
        raise InvalidInputError(
            'confidence is returned in the "json" output format; add "json" to output_format'
        )
    hotwords = parse_hotwords(job_input["hotwords"]) if "hotwords" in job_input else ()
    weight = 0.0
    if "hotword_weight" in job_input:
        if not hotwords:
            raise InvalidInputError("hotword_weight needs hotwords")
        weight = _bounded_number(
            job_input["hotword_weight"], "hotword_weight", config.HOTWORD_WEIGHT_BOUNDS, False
        )
    elif hotwords:
        weight = config.HOTWORD_WEIGHT
    diarize, max_speakers, channels = parse_speakers(job_input)
    vad = _parse_bool(job_input, "vad")
    model = None
    if job_input.get("model") is not None:
        if not isinstance(job_input["model"], str):
            raise InvalidInputError(f"model must be a string, got {_type_name(job_input['model'])}")
        model = asr_model.resolve(job_input["model"].strip())
    language = None
    if job_input.get("language") is not None:
        language = parse_language(job_input["language"], model)
    return JobRequest(
        items,
        is_batch,
        kinds,
        formats,
        output_url,
        subtitles,
        confidence,
        hotwords,
        float(weight),
        diarize,
        max_speakers,
        channels,
        language,
        vad,
        model,
    )
