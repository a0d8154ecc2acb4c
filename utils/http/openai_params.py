"""OpenAI's transcription form, declared once (`TranscriptionForm`), and turned into the queue's job input.

Every OpenAI parameter is recognised: `model` (any name while one model is served, else the queue's
`model`), `language` (the queue's field: it is checked, and the detected language is compared with it),
`temperature`, `stream`, `response_format` and `timestamp_granularities[]` are taken; the ones the model
cannot honour are refused with the reason. Our own options (`hotwords`, `confidence`, `diarize`, ...) are
extra fields with the queue's names; the queue's validation then checks them, with the queue's messages.
A list or object option comes as repeated fields (`name[]`, `name[key]`, as OpenAI's SDKs send
`extra_body`) or as one JSON value. The form model is what the OpenAPI document shows for the route.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)

import config
from utils.contract.fields import RULE, Says, broken
from utils.contract.job_input import JobInput
from utils.errors import InvalidInputError
from utils.http import json_body

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
GRANULARITIES = ("word", "segment")
STREAM_FORMATS = ("json", "text", "diarized_json")
# Formats that carry a confidence.
_CONFIDENCE_FORMATS = ("json", "verbose_json", "diarized_json")
# OpenAI parameters the model cannot honour, and why.
REFUSED = {
    "include": "per-token logprobs are not returned (verbose_json segments carry avg_logprob); send "
    "confidence=true for a confidence per word",
    "known_speaker_names": "speakers cannot be named in advance; diarize=true labels them S1, S2, ... "
    "in order of speech",
    "known_speaker_references": "speakers cannot be named in advance; diarize=true labels them S1, S2, "
    "... in order of speech",
}

# Our options, sent as extra form fields; they keep the queue input's names and rules.
OPTIONS = (
    "hotwords",
    "subtitle_options",
    "confidence",
    "diarize",
    "vad",
    "hotword_weight",
    "max_speakers",
    "channels",
    "numbers",
)
ResponseFormat = Literal[RESPONSE_FORMATS]  # type: ignore[valid-type]
Granularity = Literal[GRANULARITIES]  # type: ignore[valid-type]
# A form field as it arrives: its parts [(key or None, text)] in the order sent, `name`, `name[]` and
# `name[key]` grouped under `name`.
Parts = list[tuple[str | None, str]]


@dataclass(frozen=True)
class TranscriptionRequest:
    """A transcription form, read: the queue input it asks for and how to answer it."""

    job_input: dict[str, Any]
    response_format: str
    granularities: frozenset[str]
    stream: bool

    @property
    def segment_details(self) -> bool:
        """Whether the answer has Whisper's segments (`tokens`, `avg_logprob`, `no_speech_prob`, ...),
        which the job must compute."""
        return self.response_format == "verbose_json" and "segment" in self.granularities


def _grouped(fields: list[tuple[str, str]]) -> dict[str, Parts]:
    """Groups form fields by base name: `a[]` and `a` under "a", `a[key]` under "a" with its key.

    Returns:
        Base name → [(key or None, value)], in the order sent.
    """
    grouped: dict[str, Parts] = {}
    for name, value in fields:
        key: str | None = None
        if name.endswith("]") and "[" in name:
            name, _, rest = name.partition("[")
            key = rest[:-1] or None
        grouped.setdefault(name, []).append((key, value))
    return grouped


def _one(parts: Parts) -> str:
    """The single value of a scalar field."""
    if len(parts) > 1 or parts[0][0] is not None:
        raise broken("must be sent once, as a plain value")
    return parts[0][1]


def _one_stripped(parts: Parts) -> str:
    """The single value of a scalar field, without surrounding whitespace."""
    return _one(parts).strip()


def _flag(parts: Parts) -> bool | str:
    """`true` or `false` in any case; any other text stays text (and is refused as not a boolean)."""
    text = _one(parts)
    lowered = text.strip().lower()
    return lowered == "true" if lowered in ("true", "false") else text


def _distinct_sorted(parts: Parts) -> list[str]:
    """A repeated field's values, each once, in order (so the first refused is the least)."""
    return sorted({text for _, text in parts})


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


def _json_value(text: str) -> Any:
    """A field sent as one JSON-encoded list or object."""
    problem = json_body.problem(text.encode())
    if problem is not None:
        raise broken(problem)  # nested too deeply, or too many values: refused before parsing
    try:
        return json.loads(text)
    except ValueError:
        raise broken("must be JSON or repeated fields, got text that is not JSON") from None


def _list_option(parts: Parts) -> Any:
    """A list option: one JSON list, or the values of repeated fields (one plain value: a list of one)."""
    if len(parts) == 1 and parts[0][0] is None and parts[0][1].lstrip().startswith("["):
        return _json_value(parts[0][1])
    return [text for _, text in parts]


def _object_option(parts: Parts, info: ValidationInfo) -> Any:
    """An object option: one JSON object, or fields of the form `name[key]` (values read as JSON's)."""
    if len(parts) == 1 and parts[0][0] is None:
        return _json_value(parts[0][1])
    if any(key is None for key, _ in parts):
        raise broken(f"must be JSON or fields of the form {info.field_name}[key]")
    return {key: _coerced(text) for key, text in parts}


def _scalar_option(parts: Parts) -> Any:
    """A true/false or number option, as the JSON value it spells."""
    return _coerced(_one(parts))


_JOB_INPUT_SCHEMA = JobInput.model_json_schema()


def _as_in_job_input(name: str) -> Any:
    """An option's declaration: the job input's default and schema (the queue's validation checks it)."""
    schema = {key: value for key, value in _JOB_INPUT_SCHEMA["properties"][name].items() if key != "title"}
    if "$ref" in schema:  # an object of the job input's, shown in place
        schema = {**_JOB_INPUT_SCHEMA["$defs"][schema.pop("$ref").split("/")[-1]], **schema}
    return Field(JobInput.model_fields[name].default, json_schema_extra=schema)


def _refuse(parts: Parts, info: ValidationInfo) -> None:
    """An OpenAI parameter the model cannot honour, refused with the reason."""
    raise broken(f"is not supported: {REFUSED[info.field_name]}")


def _needs_format(
    allowed: tuple[str, ...], wanted: str, when: Callable[[Any], bool] = bool
) -> Callable[[Any, ValidationInfo], Any]:
    """A rule: a field (sent, and `when` its value says so) needs a response format among `allowed`.

    Args:
        allowed: The response formats it goes with.
        wanted: How the message names them.
        when: Whether the field's value asks for something (default: a true value).

    Returns:
        The validator (the fields declared before it are in `info.data`).
    """

    def check(value: Any, info: ValidationInfo) -> Any:
        if when(value) and info.data.get("response_format", allowed[0]) not in allowed:
            raise broken(f"needs response_format {wanted}")
        return value

    return check


Plain = Annotated[str, BeforeValidator(_one)]
ListOption = Annotated[Any, BeforeValidator(_list_option)]
ObjectOption = Annotated[Any, BeforeValidator(_object_option)]
ScalarOption = Annotated[Any, BeforeValidator(_scalar_option)]
Refused = Annotated[list[str], BeforeValidator(_refuse)]


class TranscriptionForm(BaseModel):
    """OpenAI's transcription form (`multipart/form-data`), as this server takes it; the file comes apart."""

    # Each field arrives as its parts (see `Parts`); a field's problem is worded by its `Says`.
    model_config = ConfigDict(extra="forbid", title="Transcription form")

    model: Plain = Field(
        None,
        description="Any name while one model is served (clients send their own defaults); with several, "
        "the job input's `model`.",
    )
    language: Plain = Field(
        None, description="The job input's `language`: checked, and compared with the language detected."
    )
    prompt: Annotated[
        str,
        BeforeValidator(_one_stripped),
        Says(
            value="is not supported: the model takes no text prompt; send hotwords for names and terms to "
            "favour"
        ),
    ] = Field("", max_length=0, description="Empty only: the model takes no text prompt (send `hotwords`).")
    temperature: Annotated[
        float, BeforeValidator(_one), Says(value="must be a number from 0 to 1, got {text}")
    ] = Field(None, ge=0, le=1, description="Taken and ignored: decoding is greedy.")
    chunking_strategy: Annotated[
        Literal["auto"],
        BeforeValidator(_one_stripped),
        Says(
            value='must be "auto": the worker windows long audio itself (voice-activity chunking is not '
            "available)"
        ),
    ] = Field("auto", description="`auto` only: the worker windows long audio itself.")
    response_format: Annotated[
        ResponseFormat,
        BeforeValidator(_one),
        Says(value=f"must be one of {', '.join(RESPONSE_FORMATS)}, got {{text}}"),
    ] = Field("json", description="How the transcript is answered.")
    timestamp_granularities: Annotated[
        list[Granularity],
        BeforeValidator(_distinct_sorted),
        # The last before-validator runs first: the format is named before the values.
        BeforeValidator(_needs_format(("verbose_json",), "verbose_json")),
        Says(value="must hold word and/or segment, got {text}"),
    ] = Field(None, description="With `verbose_json`: `word` and/or `segment` (segments always come).")
    stream: Annotated[
        bool,
        BeforeValidator(_flag),
        AfterValidator(_needs_format(STREAM_FORMATS, ", ".join(STREAM_FORMATS))),
        Says(value="must be true or false, got {text}"),
    ] = Field(
        False,
        strict=True,
        description=f"Server-sent events, with response_format {', '.join(STREAM_FORMATS)}.",
    )
    # Our options, with the queue input's names: read from the form here, checked by the queue's validation.
    hotwords: ListOption = _as_in_job_input("hotwords")
    subtitle_options: Annotated[
        ObjectOption, AfterValidator(_needs_format(("srt", "vtt"), "srt or vtt", when=lambda value: True))
    ] = _as_in_job_input("subtitle_options")
    confidence: Annotated[
        ScalarOption,
        AfterValidator(
            _needs_format(
                _CONFIDENCE_FORMATS, "json, verbose_json or diarized_json", when=lambda v: v is True
            )
        ),
    ] = _as_in_job_input("confidence")
    diarize: ScalarOption = _as_in_job_input("diarize")
    vad: ScalarOption = _as_in_job_input("vad")
    hotword_weight: ScalarOption = _as_in_job_input("hotword_weight")
    max_speakers: ScalarOption = _as_in_job_input("max_speakers")
    channels: Plain = _as_in_job_input("channels")
    numbers: Plain = _as_in_job_input("numbers")
    include: Refused = Field(None, description=f"Not supported: {REFUSED['include']}.")
    known_speaker_names: Refused = Field(
        None, description=f"Not supported: {REFUSED['known_speaker_names']}."
    )
    known_speaker_references: Refused = Field(
        None, description=f"Not supported: {REFUSED['known_speaker_references']}."
    )


def _refusal(errors: list[dict[str, Any]]) -> InvalidInputError:
    """The error a client sees for the form's problems: unknown fields, then refused ones, then the first."""
    unknown = [error["loc"][0] for error in errors if error["type"] == "extra_forbidden"]
    if unknown:
        names = ", ".join(name[: config.MAX_ECHOED_NAME_CHARS] for name in unknown[: config.MAX_ECHOED_NAMES])
        return InvalidInputError(f"unknown form field(s): {names}")
    first = next((error for error in errors if error["loc"][0] in REFUSED), errors[0])
    name = first["loc"][0]
    if first["type"] == RULE:
        return InvalidInputError(f"{name} {first['ctx']['text']}")
    says = next(item for item in TranscriptionForm.model_fields[name].metadata if isinstance(item, Says))
    return InvalidInputError(f"{name} {says.messages['value'].format(text=repr(str(first['input'])[:32]))}")


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
    try:
        form = TranscriptionForm.model_validate(_grouped(fields))
    except ValidationError as error:
        raise _refusal(error.errors(include_url=False)) from None
    granularities = frozenset(form.timestamp_granularities or ())
    options = {name: getattr(form, name) for name in OPTIONS if name in form.model_fields_set}
    job_input = {**options, **_format_input(form.response_format, granularities)}
    if form.language is not None:
        job_input["language"] = form.language  # checked by the queue's validation, as there
    if form.model is not None and len(served_models) > 1:
        job_input["model"] = form.model  # with one model, any name is taken (clients send their own)
    return TranscriptionRequest(
        job_input, form.response_format, granularities or frozenset({"segment"}), form.stream
    )


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
