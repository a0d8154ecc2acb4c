"""JSON text parsed within bounds: depth and the number of arrays and objects, strings skipped."""

import json

import pytest

import config
from utils.errors import InvalidInputError
from utils.http import json_body


def test_a_job_input_parses() -> None:
    text = json.dumps({"audios": [{"audio_base64": "[[[[" * 100, "id": "a"}], "hotwords": ["x"]})
    assert json_body.parse(text)["audios"][0]["id"] == "a"
    assert json_body.structure(text.encode()) == (3, 4)  # brackets inside strings do not count


def test_escaped_quotes_do_not_end_a_string() -> None:
    assert json_body.structure(json.dumps({"a": 'x\\"[[[["\\\\'}).encode()) == (1, 1)


@pytest.mark.parametrize("text", [b"[" * 10_000, b"[" * 10_000 + b"]" * 10_000])
def test_deep_nesting_is_refused_by_name(text: bytes) -> None:
    with pytest.raises(InvalidInputError, match="the request body is nested too deeply"):
        json_body.parse(text)


def test_a_deep_field_is_refused_naming_it() -> None:
    text = '{"hotwords": ' + "[" * 3000 + "]" * 3000 + "}"
    with pytest.raises(InvalidInputError, match="nested too deeply"):
        json_body.parse(text)
    with pytest.raises(InvalidInputError, match="^hotwords is nested too deeply"):
        json_body.parse("[" * 3000, "hotwords")


def test_a_flood_of_empty_arrays_is_refused_before_parsing() -> None:
    text = b"[" + b"[]," * 2_000_000 + b"[]]"
    with pytest.raises(InvalidInputError, match=f"more than {config.MAX_JSON_CONTAINERS} arrays"):
        json_body.parse(text)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="the request body is not valid JSON"):
        json_body.parse(b"not json")
    with pytest.raises(InvalidInputError, match="^x is not valid JSON$"):
        json_body.parse("{nope", "x")


def test_a_flood_of_strings_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidInputError, match=f"more than {config.MAX_JSON_STRINGS} strings"):
        json_body.parse(b"[" + b'"",' * 1_000_000 + b'""]')


def test_escaped_quotes_and_long_strings_parse() -> None:
    text = json.dumps({"a": 'x"y[', "b": "Q" * 1_000_000})
    assert json_body.parse(text)["a"] == 'x"y['
    assert json_body.structure(text.encode()) == (1, 1)
