"""Checks `job["input"]` against the input contract and turns it into a `JobRequest`.

Every problem raises `InvalidInputError` (or `PayloadTooLargeError`) with a message that names the
field and what was wrong, so a client can fix its request without reading our code.
"""

import re
from dataclasses import dataclass
from typing import Any

import config
from utils.errors import InvalidInputError, PayloadTooLargeError

SOURCE_FIELDS = ("audio_base64", "audio_url")
ALLOWED_FIELDS = frozenset({*SOURCE_FIELDS, "timestamps"})
TIMESTAMP_KINDS = ("word", "segment", "char")
# `timestamps: true` means the two kinds most clients want.
DEFAULT_TIMESTAMP_KINDS = frozenset({"word", "segment"})
_DATA_URI_PREFIX = re.compile(r"^data:[\w.+/-]*(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class JobRequest:
    """A validated job: where the audio comes from and what to return."""

    source_field: str
    source: str
    timestamp_kinds: frozenset[str]


def _type_name(value: Any) -> str:
    """Names a JSON value's type the way a client thinks of it."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


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
            f"timestamps must be true, false or a list of {', '.join(TIMESTAMP_KINDS)}; got {_type_name(value)}"
        )
    kinds = set()
    for item in value:
        if not isinstance(item, str) or item not in TIMESTAMP_KINDS:
            shown = repr(item) if isinstance(item, str) else _type_name(item)
            raise InvalidInputError(
                f"timestamps has unknown kind {shown}; allowed: {', '.join(TIMESTAMP_KINDS)}"
            )
        kinds.add(item)
    return frozenset(kinds)


def _parse_base64_field(value: Any) -> str:
    """Checks `audio_base64` and strips an optional `data:<mime>;base64,` prefix."""
    if not isinstance(value, str):
        raise InvalidInputError(f"audio_base64 must be a string, got {_type_name(value)}")
    if len(value) > config.MAX_BASE64_CHARS:
        raise PayloadTooLargeError(
            f"audio_base64 is {len(value)} characters; the limit is {config.MAX_BASE64_CHARS}. "
            "Upload larger files and send audio_url instead"
        )
    encoded = _DATA_URI_PREFIX.sub("", value, count=1)
    if not encoded.strip():
        raise InvalidInputError("audio_base64 is empty")
    return encoded


def _parse_url_field(value: Any) -> str:
    """Checks that `audio_url` is a non-empty string of sane length (the scheme is checked on fetch)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"audio_url must be a string, got {_type_name(value)}")
    url = value.strip()
    if not url:
        raise InvalidInputError("audio_url is empty")
    if len(url) > config.MAX_URL_CHARS:
        raise InvalidInputError(f"audio_url is {len(url)} characters; the limit is {config.MAX_URL_CHARS}")
    return url


def parse_input(job_input: Any) -> JobRequest:
    """Validates a job's input against the contract.

    Args:
        job_input: The value of `job["input"]` as RunPod delivers it.

    Returns:
        The validated request.

    Raises:
        InvalidInputError: Missing, doubled, unknown or mistyped fields.
        PayloadTooLargeError: `audio_base64` is over the configured cap.
    """
    if not isinstance(job_input, dict):
        raise InvalidInputError(f"input must be a JSON object, got {_type_name(job_input)}")
    unknown = sorted(str(key) for key in job_input if key not in ALLOWED_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"input has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED_FIELDS))}"
        )
    given = [name for name in SOURCE_FIELDS if name in job_input]
    if not given:
        raise InvalidInputError("input needs one of audio_base64 or audio_url")
    if len(given) > 1:
        raise InvalidInputError("input has both audio_base64 and audio_url; send exactly one")
    source_field = given[0]
    raw = job_input[source_field]
    source = _parse_base64_field(raw) if source_field == "audio_base64" else _parse_url_field(raw)
    kinds = parse_timestamps(job_input.get("timestamps", False))
    return JobRequest(source_field=source_field, source=source, timestamp_kinds=kinds)
