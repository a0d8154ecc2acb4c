"""The server's `API_KEY`, checked the same way on every route: HTTP requests and the live WebSocket.

Keys are compared in constant time, so a wrong key's answer takes as long whatever it shares with the
right one.
"""

import hmac

from starlette.requests import HTTPConnection

import config
from utils.errors import UnauthorizedError


def key_matches(given: str | None) -> bool:
    """Whether a key a client sent is the server's (any key, or none, when no key is set).

    Args:
        given: The key sent, if any.

    Returns:
        True when it is accepted.
    """
    expected = config.API_KEY
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.strip().encode(), expected.encode())


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header.

    Args:
        connection: The request or WebSocket handshake.

    Returns:
        The token, or None when the header is missing or of another scheme.
    """
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def check_key(connection: HTTPConnection) -> None:
    """Demands `Authorization: Bearer <API_KEY>` when a key is set.

    Args:
        connection: The request or WebSocket handshake.

    Raises:
        UnauthorizedError: The key is missing or wrong.
    """
    if not key_matches(bearer_token(connection)):
        raise UnauthorizedError("a valid API key is needed: send Authorization: Bearer <API_KEY>")
