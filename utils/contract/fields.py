"""Building blocks of the contract's declarations: what a field says when it is broken, limits read from
`config` when a value is checked, and the error a hand-written rule raises.

Pydantic checks the declared types, bounds and choices; `utils.contract.validation` turns its errors
into the contract's messages. A field whose words differ from the usual ones carries them in a `Says`.
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

import config

# The error type of a broken rule (see `broken`), and of a value over a payload limit.
RULE = "contract_rule"
PAYLOAD_TOO_LARGE = "payload_too_large"


@dataclass(frozen=True, init=False)
class Says:
    """A field's own words for some of pydantic's error types: the message after the field's name.

    `{got}` is the JSON type of the value sent; `{actual_length}` and `{max_length}` as pydantic gives.
    """

    messages: dict[str, str] = field(default_factory=dict)

    def __init__(self, **messages: str) -> None:
        object.__setattr__(self, "messages", messages)


@dataclass(frozen=True)
class ConfigLimit:
    """At most `config.<name>` items (a list) or characters (a string), checked before the value's parts.

    The limit is read when a value is checked, so a deployment's setting (and a test's) holds; the schema
    shows the configured value. `payload` makes going over it a `payload_too_large` error.
    """

    name: str
    payload: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        shown = handler(schema)
        key = "maxItems" if shown.get("type") == "array" else "maxLength"
        return {**shown, key: getattr(config, self.name)}

    def _check(self, value: Any) -> Any:
        limit = getattr(config, self.name)
        if isinstance(value, list | str) and len(value) > limit:
            kind = PAYLOAD_TOO_LARGE if self.payload else "too_long"
            raise PydanticCustomError(
                kind, "over the limit", {"max_length": limit, "actual_length": len(value)}
            )
        return value


def stripped(value: Any) -> Any:
    """A string without surrounding whitespace (anything else as it is, for the type check).

    Args:
        value: The value sent.

    Returns:
        The value, stripped when it is a string.
    """
    return value.strip() if isinstance(value, str) else value


def broken(text: str, *, whole: bool = False, too_large: bool = False) -> PydanticCustomError:
    """The error a hand-written rule raises.

    Args:
        text: What is wrong: the message after the name of the place that holds the value (`input` for
            the whole input), or the whole message with `whole`.
        whole: `text` is the whole message.
        too_large: The problem is the payload's size (`payload_too_large`).

    Returns:
        The error to raise inside a validator.
    """
    return PydanticCustomError(RULE, "{text}", {"text": text, "whole": whole, "too_large": too_large})
