"""utils/contract/fields.py: a field's own words, limits read from config when checked, a rule's error."""

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import config
from utils.contract.fields import PAYLOAD_TOO_LARGE, RULE, ConfigLimit, Says, broken, stripped


class Limited(BaseModel):
    model_config = ConfigDict(strict=True)

    items: Annotated[list[int], ConfigLimit("MAX_BATCH_ITEMS")] = Field(None)
    text: Annotated[str, ConfigLimit("MAX_BASE64_CHARS", payload=True)] = Field(None)


def errors(**values: object) -> list[dict]:
    with pytest.raises(ValidationError) as raised:
        Limited.model_validate(values)
    return raised.value.errors()


def test_a_config_limit_is_read_when_a_value_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BATCH_ITEMS", 2)
    Limited.model_validate({"items": [1, 2]})
    [error] = errors(items=[1, 2, "three"])
    assert (error["type"], error["ctx"]) == ("too_long", {"max_length": 2, "actual_length": 3})
    monkeypatch.setattr(config, "MAX_BATCH_ITEMS", 3)
    [error] = errors(items=[1, 2, "three"])  # within the limit now: its items are checked
    assert (error["type"], error["loc"]) == ("int_type", ("items", 2))


def test_a_payload_limit_says_payload_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MAX_BASE64_CHARS", 4)
    [error] = errors(text="abcde")
    assert (error["type"], error["ctx"]) == (PAYLOAD_TOO_LARGE, {"max_length": 4, "actual_length": 5})
    [error] = errors(text=5)  # not a string: the type's problem
    assert error["type"] == "string_type"


def test_the_schema_shows_the_configured_limits() -> None:
    properties = Limited.model_json_schema()["properties"]
    assert properties["items"]["maxItems"] == config.MAX_BATCH_ITEMS
    assert properties["text"]["maxLength"] == config.MAX_BASE64_CHARS


def test_says_and_broken_carry_the_words() -> None:
    assert Says(list_type="must be a list, got {got}").messages == {"list_type": "must be a list, got {got}"}
    error = broken("is blank", whole=False)
    assert (error.type, error.context) == (RULE, {"text": "is blank", "whole": False, "too_large": False})
    assert stripped("  a ") == "a"
    assert stripped(5) == 5
