"""The input rules no type can say: one source of audio, options that need another, the text of
hotword phrases, the base64 prefix, a model served here and a language it knows.

Each is a validator in the declaration of the field it is about (`utils.contract.job_input`) and raises
`fields.broken(...)`, so its message takes its place among pydantic's: a rule runs where its field is,
with the fields declared before it already validated (`info.data`).
"""

import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationInfo

import config
from utils.asr import model as asr_model
from utils.contract.fields import broken
from utils.errors import InvalidInputError
from utils.text import language

SOURCE_FIELDS = ("audio_base64", "audio_url")
_DATA_URI_PREFIX = re.compile(r"^data:[\w.+/-]*(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


def one_source(data: dict[str, Any]) -> None:
    """Exactly one of `audio_base64` and `audio_url` (the job's single audio, or a batch item).

    Args:
        data: The input object or batch item, as sent.

    Raises:
        PydanticCustomError: Neither or both.
    """
    given = [name for name in SOURCE_FIELDS if name in data]
    if not given:
        raise broken("needs one of audio_base64 or audio_url")
    if len(given) > 1:
        raise broken("has both audio_base64 and audio_url; send exactly one")


def one_form(data: dict[str, Any], upload: Any) -> None:
    """The job's audio comes one way: an upload, a batch (`audios`) or one source.

    Args:
        data: The input object, as sent.
        upload: The file the HTTP server received for the job, or None.

    Raises:
        PydanticCustomError: Another audio beside the upload, a batch beside a single audio, or not one
            single source.
    """
    if upload is not None:
        given = [name for name in (*SOURCE_FIELDS, "audios") if name in data]
        if given:
            raise broken(f"{given[0]} cannot be sent with an uploaded file; send one audio", whole=True)
    elif "audios" in data:
        if any(name in data for name in SOURCE_FIELDS):
            raise broken("has both audios and a single audio_base64/audio_url; send one form")
    else:
        one_source(data)


def base64_text(value: str) -> str:
    """Strips an optional `data:<mime>;base64,` prefix and refuses a malformed one or nothing at all.

    Args:
        value: The `audio_base64` string.

    Returns:
        The base64 text (checked as base64 when it is decoded).

    Raises:
        PydanticCustomError: A malformed prefix, or nothing after it.
    """
    encoded = _DATA_URI_PREFIX.sub("", value, count=1)
    if encoded[:5].lower() == "data:":
        raise broken("has a malformed data: prefix; use data:<mime type>;base64,<data>")
    if not encoded.strip():
        raise broken("is empty")
    return encoded


def _is_text(value: str) -> bool:
    """Whether a string is valid Unicode text (no lone surrogates, which no UTF-8 output can hold)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def phrase(value: str) -> str:
    """A hotword phrase: text, whitespace collapsed, not blank, at most `MAX_HOTWORD_CHARS`.

    Args:
        value: The phrase sent.

    Returns:
        The phrase, whitespace collapsed.

    Raises:
        PydanticCustomError: Not valid text, blank or too long.
    """
    if not _is_text(value):
        raise broken("must be valid Unicode text")
    collapsed = " ".join(value.split())
    if not collapsed:
        raise broken("is blank")
    if len(collapsed) > config.MAX_HOTWORD_CHARS:
        raise broken(f"is {len(collapsed)} characters; at most {config.MAX_HOTWORD_CHARS}")
    return collapsed


def distinct(values: list[str]) -> list[str]:
    """The values without repeats, in order.

    Args:
        values: The values.

    Returns:
        Each value once, where it first stands.
    """
    return list(dict.fromkeys(values))


def batch_payload(items: list[Any]) -> list[Any]:
    """After `audios`: a batch's base64 audio in all stays under `MAX_BASE64_CHARS`.

    Args:
        items: The batch's items, validated.

    Returns:
        The items.

    Raises:
        PydanticCustomError: Over the limit (`payload_too_large`).
    """
    total = sum(len(item.audio_base64) for item in items if item.audio_base64 is not None)
    if total > config.MAX_BASE64_CHARS:
        raise broken(
            f"audios carry {total} base64 characters in all; the limit is {config.MAX_BASE64_CHARS}. "
            "Send large files as audio_url",
            whole=True,
            too_large=True,
        )
    return items


def timestamps_in_json(formats: list[str], info: ValidationInfo) -> list[str]:
    """After `output_format`: timestamps are returned in the "json" output format only.

    Args:
        formats: The output formats, validated.
        info: Pydantic's; `data` holds the fields validated before (`timestamps`).

    Returns:
        The formats.

    Raises:
        PydanticCustomError: Timestamps asked for without "json".
    """
    if info.data.get("timestamps") and "json" not in formats:
        raise broken(
            'timestamps are returned in the "json" output format; add "json" to output_format', whole=True
        )
    return formats


def confidence_in_json(wanted: bool, info: ValidationInfo) -> bool:
    """After `confidence`: it is returned in the "json" output format only.

    Args:
        wanted: The field's value, validated.
        info: Pydantic's; `data` holds the fields validated before (`output_format`).

    Returns:
        The value.

    Raises:
        PydanticCustomError: Asked for without "json".
    """
    formats = info.data.get("output_format")
    if wanted and formats is not None and "json" not in formats:
        raise broken(
            'confidence is returned in the "json" output format; add "json" to output_format', whole=True
        )
    return wanted


def subtitles_need_srt_or_vtt(value: Any, info: ValidationInfo) -> Any:
    """Before `subtitle_options`: they shape "srt" and "vtt" output only.

    Args:
        value: The options as sent.
        info: Pydantic's; `data` holds the fields validated before (`output_format`).

    Returns:
        The value.

    Raises:
        PydanticCustomError: Neither is in `output_format`.
    """
    formats = info.data.get("output_format")
    if formats is not None and not {"srt", "vtt"} & set(formats):
        raise broken('shape "srt" and "vtt" output; add one to output_format')
    return value


def needs(field: str, wanted: str) -> Callable[[Any, ValidationInfo], Any]:
    """A rule for an option that means something only with another field (`hotword_weight` weighs
    `hotwords`, `max_speakers` limits the diarizer), checked before the option's value.

    Args:
        field: The other field, declared before the option.
        wanted: How the message names what is needed (`hotwords`, `diarize: true`).

    Returns:
        The validator: it raises `PydanticCustomError` when the other field is absent or off.
    """

    def check(value: Any, info: ValidationInfo) -> Any:
        if field in info.data and not info.data[field]:
            raise broken(f"needs {wanted}")
        return value

    return check


def served_model(value: str | None) -> str | None:
    """The served model a job's `model` names.

    Args:
        value: The name sent, or None (the default model).

    Returns:
        The model as configured, or None.

    Raises:
        PydanticCustomError: No served model has that name.
    """
    if value is None:
        return None
    try:
        return asr_model.resolve(value.strip())
    except InvalidInputError as error:
        raise broken(str(error), whole=True) from None


def model_language(value: str | None, info: ValidationInfo) -> str | None:
    """After `language`: a language the job's model transcribes, as its ISO 639-1 code without a region.

    Args:
        value: The language sent, or None.
        info: Pydantic's; `data` holds the fields validated before (`model`: the job's model, None for
            the default).

    Returns:
        The code, lower case, or None.

    Raises:
        PydanticCustomError: Not a language the model transcribes.
    """
    if value is None or "model" not in info.data:  # a model not served here is its own problem
        return value
    code = language.normalized(value)
    served = asr_model.served_models()
    chosen = info.data["model"] or served[0]
    known = asr_model.languages(chosen)
    if code not in known:
        shown = value[: config.MAX_ECHOED_NAME_CHARS]
        which = "the model" if len(served) == 1 else f"model {asr_model.model_id(chosen)!r}"
        raise broken(
            f"{shown!r} is not one {which} transcribes ({', '.join(known)}); "
            "it cannot be forced to a language anyway: leave language out to have it detected"
        )
    return code
