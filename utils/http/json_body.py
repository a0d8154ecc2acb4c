"""JSON text from a client, parsed within bounds: nesting depth and the number of arrays and objects.

Python's parser recurses once per level (10,000 `[` end in `RecursionError`) and builds every value it
reads (millions of `[]` take seconds and hundreds of MB). The text is measured first, in C-speed
passes (strings blanked by one regular expression, then bracket counts and a running depth over the
bytes that remain), so a hostile body is refused before any of it is built. The HTTP routes call
`parse` off the event loop.
"""

import json
import re
from typing import Any

import numpy as np

import config
from utils.errors import InvalidInputError

# A JSON string, escapes included (unrolled, so that it never backtracks).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DELTA = np.zeros(256, dtype=np.int8)
_DELTA[list(b"[{")] = 1
_DELTA[list(b"]}")] = -1


def structure(text: bytes) -> tuple[int, int]:
    """The deepest nesting and the number of arrays and objects of a JSON text (strings skipped).

    Args:
        text: The JSON text (well-formed or not).

    Returns:
        (depth, containers).
    """
    bare = _STRING.sub(b"", text)
    containers = bare.count(b"[") + bare.count(b"{")
    if not containers:
        return 0, 0
    steps = _DELTA[np.frombuffer(bare, dtype=np.uint8)].astype(np.int32)
    return int(np.cumsum(steps).max()), containers


def parse(text: bytes | str, what: str = "the request body", not_json: str | None = None) -> Any:
    """Parses JSON text after checking its shape against `MAX_JSON_DEPTH` and `MAX_JSON_CONTAINERS`.

    Args:
        text: The JSON text.
        what: What the text is, for the messages ("the request body", or a field's name).
        not_json: The message when the text is not JSON (default: `what` is not valid JSON).

    Returns:
        The parsed value.

    Raises:
        InvalidInputError: Nested too deeply, too many arrays and objects, or not JSON.
    """
    raw = text.encode() if isinstance(text, str) else text
    depth, containers = structure(raw)
    if depth > config.MAX_JSON_DEPTH:
        raise InvalidInputError(f"{what} is nested too deeply: at most {config.MAX_JSON_DEPTH} levels")
    if containers > config.MAX_JSON_CONTAINERS:
        raise InvalidInputError(
            f"{what} holds more than {config.MAX_JSON_CONTAINERS} arrays and objects; "
            "no job input needs as many"
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInputError(not_json or f"{what} is not valid JSON") from None
