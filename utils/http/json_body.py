"""JSON text from a client, parsed within bounds: nesting depth and the number of arrays and objects.

Python's parser recurses once per level (10,000 `[` end in `RecursionError`) and builds every value it
reads (millions of `[]` take seconds and hundreds of MB). The text is measured first, in C-speed
passes (strings cut out, the brackets kept, counted, and their running depth summed), so a hostile
body is refused in milliseconds before any of it is built. The HTTP routes call `parse` off the event
loop.
"""

import json
import re
from typing import Any

import numpy as np

import config
from utils.errors import InvalidInputError

# A JSON string, escapes included (unrolled, so that it never backtracks).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Every byte but the four brackets, for `bytes.translate` to delete.
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# The running depth is measured over this many brackets at most (a bound on the work, not on the
# answer: past it the count of arrays and objects refuses the text anyway).
_DEPTH_SCAN_BRACKETS = 1 << 16
# A text with no quote escaped has its strings cut out by splitting at the quotes (C speed); only one
# with `\"` in it takes the regular expression.
_ESCAPED_QUOTE = b'\\"'
_DELTA = np.zeros(256, dtype=np.int32)
_DELTA[list(b"[{")] = 1
_DELTA[list(b"]}")] = -1


def _without_strings(text: bytes) -> bytes:
    """The text with its strings' contents removed."""
    if _ESCAPED_QUOTE not in text:
        return b"".join(text.split(b'"')[0::2])
    return _STRING.sub(b"", text)


def structure(text: bytes) -> tuple[int, int]:
    """The deepest nesting and the number of arrays and objects of a JSON text (strings skipped).

    Every pass is a C loop over the bytes (split or a regular expression, translate, count); the
    depth is a running sum over the brackets alone, the first `_DEPTH_SCAN_BRACKETS` of them.

    Args:
        text: The JSON text (well-formed or not).

    Returns:
        (depth, containers).
    """
    if text.count(b'"') > 2 * config.MAX_JSON_STRINGS:
        return 0, 0  # `parse` refuses it by its strings; cutting millions of them out is the slow part
    brackets = _without_strings(text).translate(None, _NOT_BRACKETS)
    containers = brackets.count(b"[") + brackets.count(b"{")
    if not containers:
        return 0, 0
    scanned = np.frombuffer(brackets[:_DEPTH_SCAN_BRACKETS], dtype=np.uint8)
    return int(np.cumsum(_DELTA[scanned], dtype=np.int32).max()), containers


def problem(text: bytes) -> str | None:
    """What makes a JSON text too costly to parse, if anything: checked against `MAX_JSON_DEPTH`,
    `MAX_JSON_CONTAINERS` and `MAX_JSON_STRINGS`.

    Args:
        text: The JSON text.

    Returns:
        The problem, worded to follow the name of what holds the text ("is nested too deeply: ..."), or
        None when the text may be parsed.
    """
    if text.count(b'"') > 2 * config.MAX_JSON_STRINGS:
        return f"holds more than {config.MAX_JSON_STRINGS} strings; no job input needs as many"
    depth, containers = structure(text)
    if depth > config.MAX_JSON_DEPTH:
        return f"is nested too deeply: at most {config.MAX_JSON_DEPTH} levels"
    if containers > config.MAX_JSON_CONTAINERS:
        return f"holds more than {config.MAX_JSON_CONTAINERS} arrays and objects; no job input needs as many"
    return None


def parse(text: bytes | str, what: str = "the request body") -> Any:
    """Parses JSON text unless it has a `problem`.

    Args:
        text: The JSON text.
        what: What the text is, for the messages.

    Returns:
        The parsed value.

    Raises:
        InvalidInputError: Nested too deeply, too many arrays, objects or strings, or not JSON.
    """
    raw = text.encode() if isinstance(text, str) else text
    found = problem(raw)
    if found is not None:
        raise InvalidInputError(f"{what} {found}")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInputError(f"{what} is not valid JSON") from None
