"""Bounded reading of HTTP/1.1 connections: the limits uvicorn has no setting for, and the server's config.

uvicorn's httptools protocol reads a request line and headers of any size, for as long as the client
takes, and holds any number of idle connections that have not sent a request yet. `BoundedProtocol`
adds, per connection:

- at most `MAX_CONNECTIONS` open on a port: one more is answered 503 (`busy`) and closed;
- the request line and headers within `MAX_HEADER_BYTES` and `MAX_HEADERS` lines (431 beyond);
- the whole head within `HEADERS_TIMEOUT_SECONDS` of its first byte, or of the connection's opening
  (408 when part of it came, a plain close when nothing did);
- malformed HTTP answered 400 in the error shape, not uvicorn's plain text;
- each request's scope holds its connection's end (`connection_closed`), so that a request waiting
  for a slot, its body unread, can leave the line when its client goes away.

Idle keep-alive connections close after `KEEP_ALIVE_TIMEOUT_SECONDS` (uvicorn's own timer). A body's
pace is the routes' business (`utils.http.form.timed`), because a request waiting for a slot is not
read at all. `close_unread` closes a connection whose request body was not read to its end, so that
nothing after an answered request (or a form's closing boundary) is read.
"""

import asyncio
import json
import logging
from typing import Any

import httptools
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

import config
from utils.http import errors

log = logging.getLogger(__name__)

# The end of a request's head; a client may also end its lines with a bare LF.
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")
# The ASGI extension under which a request's scope holds its connection's end.
_CLOSED_EXTENSION = "parakeet.connection_closed"


def connection_closed(scope: Scope) -> "asyncio.Future[None] | None":
    """The future that is done once the request's connection has closed (None under another server).

    A waiting request cannot learn that its client left by reading (that would read its body), so the
    protocol offers the connection's end instead.

    Args:
        scope: The request's ASGI scope.

    Returns:
        The future, or None when the server is not `BoundedProtocol`'s.
    """
    extension = scope.get("extensions", {}).get(_CLOSED_EXTENSION)
    return None if extension is None else extension["closed"]


class _Refused(Exception):
    """A parser callback refused the request; the protocol answers it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _answer(error_type: str, message: str, retry_after: int | None = None) -> bytes:
    """A whole HTTP response in the error shape, that closes the connection."""
    body = json.dumps(errors.error_body(message, error_type)).encode()
    status = errors.status_of(error_type)
    lines = [
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n",
    ]
    if retry_after is not None:
        lines.append(b"retry-after: " + str(retry_after).encode() + b"\r\n")
    return b"".join([*lines, b"\r\n", body])


def _too_large() -> str:
    return f"the request line and headers are larger than {config.MAX_HEADER_BYTES} bytes (MAX_HEADER_BYTES)"


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on connections, heads and the time a head takes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_raw = 0  # bytes of the head as they arrive (bounds what the parser buffers)
        self._head_parsed = 0  # its request line and header lines, as parsed
        self._header_count = 0
        self._head_seen = False
        self._tail = b""
        self._head_timer: Any = None
        self._closed: asyncio.Future[None] = self.loop.create_future()

    # --- connection ---

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        """Takes a connection, or answers 503 and closes it when its port holds `MAX_CONNECTIONS`."""
        super().connection_made(transport)
        here = sum(1 for other in self.connections if getattr(other, "server", None) == self.server)
        if here > config.MAX_CONNECTIONS:
            log.warning("refused a connection: %d open (MAX_CONNECTIONS)", here - 1)
            message = f"the server holds {config.MAX_CONNECTIONS} connections (MAX_CONNECTIONS); retry later"
            self._close_with("busy", message, retry_after=config.BUSY_RETRY_AFTER_SECONDS)
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stops the head's timer with the connection, and tells its requests that it closed."""
        self._disarm_head_timer()
        if not self._closed.done():
            self._closed.set_result(None)
        super().connection_lost(exc)

    def _close_with(self, error_type: str, message: str, retry_after: int | None = None) -> None:
        """Answers in the error shape unless a response is under way, then closes the connection.

        A request whose answer has not begun (a broken chunk in its body, or a wrong Content-Length that
        left garbage behind it) gets this answer instead: its route's answer is no longer written.
        """
        self._disarm_head_timer()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        unanswered = cycle is not None and not cycle.response_started and not self.pipeline
        if cycle is None or cycle.response_complete or unanswered:
            if unanswered:
                cycle.disconnected = True  # its route reads a disconnect and sends into the void
                cycle.message_event.set()
            self.transport.write(_answer(error_type, message, retry_after))
        self.transport.close()

    # --- the head's deadline ---

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(config.HEADERS_TIMEOUT_SECONDS, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head waits, unread, for the answer before it
            return
        if not self._head_seen:
            self.transport.close()  # nothing came: nothing to answer
            return
        log.warning("closed a connection whose headers took over %g s", config.HEADERS_TIMEOUT_SECONDS)
        self._close_with(
            "upload_timeout",
            f"the request's headers did not arrive within {config.HEADERS_TIMEOUT_SECONDS:g} s "
            "(HEADERS_TIMEOUT_SECONDS)",
        )

    # --- reading ---

    def data_received(self, data: bytes) -> None:
        """Feeds the parser, counting the head's bytes as they come; refusals answer in the error shape."""
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_seen = True
            self._arm_head_timer()
            self._head_raw += self._head_part(data)
            if self._head_raw > config.MAX_HEADER_BYTES:
                self._refuse_head_size()
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            refused = error.__context__
            if isinstance(refused, _Refused):
                log.warning("refused a request: %s", refused)
                self._close_with(refused.error_type, str(refused))
                return
            log.warning("refused malformed HTTP: %s", str(error)[:80])
            self._close_with("invalid_input", "the request is not well-formed HTTP/1.1")

    def _head_part(self, data: bytes) -> int:
        """How many bytes of `data` belong to the head (all of them unless its end is in there)."""
        tail = self._tail
        seen = tail + data
        self._tail = seen[-3:]
        found = [seen.find(end) + len(end) for end in _HEAD_ENDS if end in seen]
        return max(0, min(found) - len(tail)) if found else len(data)

    def _refuse_head_size(self) -> None:
        log.warning("refused a request whose head is over %d bytes", config.MAX_HEADER_BYTES)
        self._close_with("headers_too_large", _too_large())

    # --- parser callbacks ---

    def on_message_begin(self) -> None:
        """A new request's head begins: its limits and its deadline start over."""
        super().on_message_begin()
        self.scope.setdefault("extensions", {})[_CLOSED_EXTENSION] = {"closed": self._closed}
        self._in_head = self._head_seen = True
        self._head_parsed = self._header_count = 0
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        """Counts the request target toward the head's size."""
        self._head_parsed += len(url)
        if self._head_parsed > config.MAX_HEADER_BYTES:
            raise _Refused("headers_too_large", _too_large())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Counts a header line toward the head's size and number."""
        self._header_count += 1
        self._head_parsed += len(name) + len(value) + 4
        if self._header_count > config.MAX_HEADERS:
            raise _Refused(
                "headers_too_large", f"the request has more than {config.MAX_HEADERS} headers (MAX_HEADERS)"
            )
        if self._head_parsed > config.MAX_HEADER_BYTES:
            raise _Refused("headers_too_large", _too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is whole: its deadline stops, and the body is the route's to read."""
        self._in_head = False
        self._head_raw = 0
        self._tail = b""
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """After an answer the connection waits for the next head (uvicorn's keep-alive timer runs)."""
        self._head_seen = False
        super().on_response_complete()


def close_unread(app: ASGIApp) -> ASGIApp:
    """Wraps `app` so that an answer sent before its request's body was read to the end closes the
    connection: the rest of that body (or anything after a form's closing boundary) is never read.

    Args:
        app: The ASGI application.

    Returns:
        The wrapped application.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        unread = headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers

        async def tracked_receive() -> Message:
            nonlocal unread
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                unread = False
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and unread:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await app(scope, tracked_receive, closing_send)

    return wrapped


def server_config(app: ASGIApp, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration the server runs with (and the tests too).

    Args:
        app: The ASGI application.
        **options: More uvicorn options (host, port, log_config...).

    Returns:
        The configuration: the bounded protocol, the keep-alive timeout, no access log, and WebSocket
        messages (the live door's) up to one full audio append.
    """
    return uvicorn.Config(
        close_unread(app),
        http=BoundedProtocol,
        timeout_keep_alive=config.KEEP_ALIVE_TIMEOUT_SECONDS,  # type: ignore[arg-type]
        access_log=False,
        ws_max_size=config.REALTIME_MAX_MESSAGE_BYTES,
        **options,
    )
