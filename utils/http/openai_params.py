"""OpenAI's transcription form, turned into the queue's job input.

Every OpenAI parameter is recognised: `model` (any name while one model is served, else the queue's
`model`), `language` (the queue's field: it is checked, and the
detected language is compared with it), `temperature`, `stream`, `response_format` and
`timestamp_granularities[]` are taken; the ones the model cannot honour are refused with the reason.
Our own options (`hotwords`, `confidence`, `diarize`, ...) are extra fields with the queue's names; the
queue's validation then checks them, with the queue's messages. A list or object option comes as
repeated fields (`name[]`, `name[key]`, as OpenAI's SDKs send `extra_body`) or as one JSON value.
"""

from dataclasses import dataclass
from typing import Any

import config
from utils.errors import InvalidInputError
from utils.http import json_body

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
GRANULARITIES = ("word", "segment")
STREAM_FORMATS = ("json", "text", "diarized_json")
# Our options, sent as extra form fields; they keep the queue input's names and rules.
LIST_OPTIONS = ("hotwords",)
OBJECT_OPTIONS = ("subtitle_options",)
BOOL_OPTIONS = ("confidence", "diarize", "vad")
NUMBER_OPTIONS = ("hotword_weight", "max_speakers")
TEXT_OPTIONS = ("channels",)
OPTIONS = LIST_OPTIONS + OBJECT_OPTIONS + BOOL_OPTIONS + NUMBER_OPTIONS + TEXT_OPTIONS
# OpenAI parameters the model cannot honour, and why.
REFUSED = {
    "include": "per-token logprobs are not available; send confidence=true for a confidence per word",
    "known_speaker_names": "speakers cannot be named in advance; diarize=true labels them S1, S2, ... "
    "in order of speech",
    "known_speaker_references": "speakers cannot be named in advance; diarize=true labels them S1, S2, "
    "... in order of speech",
}
TAKEN = ("model", "language", "prompt", "temperature", "chunking_strategy", "stream", "response_format")
KNOWN = frozenset((*TAKEN, "timestamp_granularities", *REFUSED, *OPTIONS))


@dataclass(frozen=True)
class TranscriptionRequest:
    """A transcription form, read: the queue input it asks for and how to answer it."""

    job_input: dict[str, Any]
    response_format: str
    granularities: frozenset[str]
    stream: bool


def _grouped(fields: list[tuple[str, str]]) -> dict[str, list[tuple[str | None, str]]]:
    """Groups form fields by base name: `a[]` and `a` under "a", `a[key]` under "a" with its key.

    Returns:
        Base name → [(key or None, value)], in the order sent.
    """
    grouped: dict[str, list[tuple[str | None, str]]] = {}
    for name, value in fields:
        key: str | None = None
        if name.endswith("]") and "[" in name:
            name, _, rest = name.partition("[")
            key = rest[:-1] or None
        grouped.setdefault(name, []).append((key, value))
    return grouped


def _one(name: str, values: list[tuple[str | None, str]]) -> str:
    """The single value of a scalar field."""
    if len(values) > 1 or values[0][0] is not None:
        raise InvalidInputError(f"{name} must be sent once, as a plain value")
    return values[0][1]


def _coerced(text: str) -> Any:
    """A form value as the JSON value it spells (true, 3, 0.5), or the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _json_value(name: str, text: str) -> Any:
    """A field sent as one JSON-encoded list or object."""
    return json_body.parse(
        text, name, not_json=f"{name} must be JSON or repeated fields, got text that is not JSON"
    )


def _option(name: str, values: list[tuple[str | None, str]]) -> Any:
    """One of our options as the queue input's value (the queue's validation checks it)."""
    if name in LIST_OPTIONS:
        if len(values) == 1 and values[0][0] is None and values[0][1].lstrip().startswith("["):
            return _json_value(name, values[0][1])
        return [value for _, value in values]
    if name in OBJECT_OPTIONS:
        if len(values) == 1 and values[0][0] is None:
            return _json_value(name, values[0][1])
        if any(key is None for key, _ in values):
            raise InvalidInputError(f"{name} must be JSON or fields of the form {name}[key]")
        return {key: _coerced(value) for key, value in values}
    text = _one(name, values)
    return text if name in TEXT_OPTIONS else _coerced(text)


def _check_temperature(text: str) -> None:
    """Takes a temperature in [0, 1]; decoding is greedy, so it changes nothing."""
    value = _coerced(text)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInputError(f"temperature must be a number from 0 to 1, got {text[:32]!r}")


def _check_chunking(text: str) -> None:
    """Takes `auto` only: long audio is always cut into windows by the worker itself."""
    if text.strip() != "auto":
        raise InvalidInputError(
            'chunking_strategy must be "auto": the worker windows long audio itself (voice-activity '
            "chunking is not available)"
        )


def _stream_flag(text: str) -> bool:
    value = _coerced(text)
    if not isinstance(value, bool):
        raise InvalidInputError(f"stream must be true or false, got {text[:32]!r}")
    return value


def parse_form(fields: list[tuple[str, str]], served_models: list[str]) -> TranscriptionRequest:
    """Reads a transcription form's text fields.

    Args:
        fields: The form's text fields, in order (the file is not among them).
        served_models: The ids of the models this server serves.

    Returns:
        The queue input (without the audio, which is the upload) and how to answer.

    Raises:
        InvalidInputError: An unknown, doubled or refused field, or a bad value.
    """
    grouped = _grouped(fields)
    unknown = [name for name in grouped if name not in KNOWN]
    if unknown:
        names = ", ".join(name[: config.MAX_ECHOED_NAME_CHARS] for name in unknown[: config.MAX_ECHOED_NAMES])
        raise InvalidInputError(f"unknown form field(s): {names}")
    for name, reason in REFUSED.items():
        if name in grouped:
            raise InvalidInputError(f"{name} is not supported: {reason}")
    scalars = {name: _one(name, grouped[name]) for name in TAKEN if name in grouped}

    if scalars.get("prompt", "").strip():
        raise InvalidInputError(
            "prompt is not supported: the model takes no text prompt; send hotwords for names and terms "
            "to favour"
        )
    if "temperature" in scalars:
        _check_temperature(scalars["temperature"])
    if "chunking_strategy" in scalars:
        _check_chunking(scalars["chunking_strategy"])
    stream = _stream_flag(scalars["stream"]) if "stream" in scalars else False

    response_format = scalars.get("response_format", "json")
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInputError(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {response_format[:32]!r}"
        )
    granularities = frozenset(value for _, value in grouped.get("timestamp_granularities", []))
    if granularities and response_format != "verbose_json":
        raise InvalidInputError("timestamp_granularities needs response_format verbose_json")
    if granularities - set(GRANULARITIES):
        bad = min(granularities - set(GRANULARITIES))
        raise InvalidInputError(f"timestamp_granularities must hold word and/or segment, got {bad[:32]!r}")
    if stream and response_format not in STREAM_FORMATS:
        raise InvalidInputError(f"stream needs response_format {', '.join(STREAM_FORMATS)}")

    options = {name: _option(name, grouped[name]) for name in OPTIONS if name in grouped}
    _check_option_formats(options, response_format)
    job_input = {**options, **_format_input(response_format, granularities)}
    if "language" in scalars:
        job_input["language"] = scalars["language"]  # checked by the queue's validation, as there
    if "model" in scalars and len(served_models) > 1:
        job_input["model"] = scalars["model"]  # with one model, any name is taken (clients send their own)
    return TranscriptionRequest(job_input, response_format, granularities or frozenset({"segment"}), stream)


def _check_option_formats(options: dict[str, Any], response_format: str) -> None:
    """Options that only make sense in some formats say which."""
    if "subtitle_options" in options and response_format not in ("srt", "vtt"):
        raise InvalidInputError("subtitle_options needs response_format srt or vtt")
    if options.get("confidence") is True and response_format not in ("json", "verbose_json", "diarized_json"):
        raise InvalidInputError("confidence needs response_format json, verbose_json or diarized_json")


def _format_input(response_format: str, granularities: frozenset[str]) -> dict[str, Any]:
    """The queue input fields a response format needs."""
    if response_format in ("srt", "vtt"):
        return {"output_format": response_format}
    if response_format == "verbose_json":
        # Segments always: the words are grouped into them, and verbose_json without words shows them.
        return {"output_format": "json", "timestamps": sorted({*granularities, "segment"})}
    if response_format == "diarized_json":
        return {"output_format": "json", "timestamps": ["segment"], "diarize": True}
    return {"output_format": "json"}
