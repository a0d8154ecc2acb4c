"""The API key check shared by the HTTP routes and the live door."""

import pytest
from starlette.requests import HTTPConnection

import config
from utils.errors import UnauthorizedError
from utils.http import keys


def connection(**headers: str) -> HTTPConnection:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw})


def test_without_a_key_anything_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "API_KEY", None)
    assert keys.key_matches(None)
    keys.check_key(connection())


def test_with_a_key_only_that_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "API_KEY", "s3cret")
    assert keys.key_matches("s3cret")
    assert keys.key_matches(" s3cret ")
    assert not keys.key_matches("s3cre")
    assert not keys.key_matches("")
    assert not keys.key_matches(None)
    keys.check_key(connection(Authorization="Bearer s3cret"))
    keys.check_key(connection(Authorization="bearer s3cret"))
    for headers in ({}, {"Authorization": "Basic s3cret"}, {"Authorization": "Bearer nope"}):
        with pytest.raises(UnauthorizedError, match="Authorization: Bearer"):
            keys.check_key(connection(**headers))


def test_bearer_token_reads_the_bearer_scheme_only() -> None:
    assert keys.bearer_token(connection(Authorization="Bearer abc")) == "abc"
    assert keys.bearer_token(connection(Authorization="Token abc")) is None
    assert keys.bearer_token(connection()) is None
