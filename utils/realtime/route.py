"""The live door: `GET /v1/realtime?intent=transcription`, a WebSocket speaking OpenAI's Realtime API in
its transcription mode, on the HTTP server's app and port.

At the handshake: the `API_KEY` (the `Authorization: Bearer` header, or a browser's
`Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.<key>`), then readiness (the model must be
loaded), then room (`REALTIME_MAX_SESSIONS`): each refusal is an HTTP answer with OpenAI's error body
(401, 503), at once. A connection for a conversation (a `model` in the query, or no transcription intent)
is accepted only to be told, in an `error` event, that transcription sessions alone are served.

A session ends when its client leaves (its turns are freed at once), after `REALTIME_IDLE_TIMEOUT_SECONDS`
without an event, at `REALTIME_MAX_SESSION_SECONDS`, or when the server shuts down; but for a departed
client, the turn in progress is committed and every turn's transcript sent first, then an `error` event
says why the session closes.
"""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

import config
from utils.errors import UnauthorizedError, WorkerBusyError, WorkerError
from utils.http import errors, readiness
from utils.http.keys import bearer_token, key_matches
from utils.realtime import engine as live_engine
from utils.realtime import events
from utils.realtime.session import ClientGone, Session

log = logging.getLogger(__name__)

PATH = "/v1/realtime"
SUBPROTOCOL = "realtime"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
# WebSocket close codes (RFC 6455): normal, policy violation, service restart.
_NORMAL, _POLICY, _RESTART = 1000, 1008, 1012


@dataclass(frozen=True)
class _Ending:
    """Why the server ends a session: the `error` event's code and message, and the close code."""

    code: str
    message: str
    close_code: int


_SHUTDOWN = _Ending("server_shutting_down", "the server is shutting down; reconnect to continue", _RESTART)


class LiveSessions:
    """The live sessions this server holds: admission, and their closing when the server stops."""

    def __init__(self) -> None:
        """Starts empty and open."""
        self._stops: dict[Session, asyncio.Event] = {}
        self._served: set[asyncio.Task[Any]] = set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._stops)

    def admit(self, session: Session) -> asyncio.Event | None:
        """Takes a session if there is room.

        Args:
            session: The new session.

        Returns:
            The event that asks it to stop, or None when the server is full or closing.
        """
        if self.closing or len(self._stops) >= config.REALTIME_MAX_SESSIONS:
            return None
        stop = asyncio.Event()
        self._stops[session] = stop
        task = asyncio.current_task()
        if task is not None:
            self._served.add(task)
        return stop

    def release(self, session: Session) -> None:
        """Forgets a session that has ended.

        Args:
            session: The session.
        """
        self._stops.pop(session, None)
        task = asyncio.current_task()
        if task is not None:
            self._served.discard(task)

    async def drain(self) -> None:
        """Refuses new sessions and closes every live one: each answers its turns, then is told why."""
        self.closing = True
        for stop in self._stops.values():
            stop.set()
        waiting = set(self._served)
        if not waiting:
            return
        _, stuck = await asyncio.wait(waiting, timeout=config.REALTIME_CLOSE_WAIT_SECONDS + 5)
        for task in stuck:  # a connection that cannot even be closed: the shutdown goes on without it
            task.cancel()
        if stuck:
            log.warning("%d live session(s) did not close in time; cancelled", len(stuck))
            await asyncio.wait(stuck, timeout=5)


def mount(app: FastAPI, state: readiness.Readiness) -> LiveSessions:
    """Adds the live route to the server's app.

    Args:
        app: The app.
        state: The server's readiness (sessions wait for the model; a GPU failure lowers it).

    Returns:
        The sessions it will hold (also `app.state.live_sessions`, for the server's shutdown).
    """
    sessions = LiveSessions()
    app.state.live_sessions = sessions

    @app.websocket(PATH)
    async def realtime(websocket: WebSocket) -> None:
        await _connection(websocket, state, sessions)

    return sessions


def _offered(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [name.strip() for name in header.split(",") if name.strip()]


def _given_key(websocket: WebSocket, offered: list[str]) -> str | None:
    """The key sent as a bearer token, else in the browser's subprotocol form."""
    token = bearer_token(websocket)
    if token is not None:
        return token
    for name in offered:
        if name.startswith(KEY_SUBPROTOCOL_PREFIX):
            return name[len(KEY_SUBPROTOCOL_PREFIX) :]
    return None


async def _deny(websocket: WebSocket, error: WorkerError) -> None:
    """Refuses the handshake with an HTTP answer: OpenAI's error body and the door's status."""
    response = errors.error_response(str(error), error.error_type)
    if isinstance(error, UnauthorizedError):
        response.headers["WWW-Authenticate"] = "Bearer"
    await websocket.send_denial_response(response)


def _refusal(websocket: WebSocket, offered: list[str], state: readiness.Readiness) -> WorkerError | None:
    """Why the handshake is refused before a session is made, if it is."""
    if not key_matches(_given_key(websocket, offered)):
        return UnauthorizedError(
            "a valid API key is needed: send Authorization: Bearer <API_KEY> (or, from a browser, the "
            f"subprotocol {KEY_SUBPROTOCOL_PREFIX}<API_KEY>)"
        )
    if state.state == readiness.STARTING:
        return WorkerBusyError("the model is still loading; retry when /ping answers 200")
    if state.state == readiness.FAILED:
        return WorkerBusyError("this worker is unhealthy and takes no sessions; connect to another")
    return None


def _conversation(websocket: WebSocket) -> bool:
    query = websocket.query_params
    return "model" in query or query.get("intent") != "transcription"


async def _connection(websocket: WebSocket, state: readiness.Readiness, sessions: LiveSessions) -> None:
    """One WebSocket connection, from its handshake to its close."""
    offered = _offered(websocket)
    refusal = _refusal(websocket, offered, state)
    if refusal is not None:
        await _deny(websocket, refusal)
        return
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    if _conversation(websocket):
        message = (
            "only transcription sessions are served: connect to /v1/realtime?intent=transcription "
            "without a model"
        )
        with contextlib.suppress(WebSocketDisconnect):  # the client may not wait to be told
            await websocket.accept(subprotocol)
            await websocket.send_text(json.dumps(events.error(message, "conversation_not_served", "intent")))
            await websocket.close(_POLICY)
        return
    lock = asyncio.Lock()

    async def send(event: dict[str, Any]) -> None:
        async with lock:
            try:
                await websocket.send_text(json.dumps(event))
            except (WebSocketDisconnect, RuntimeError) as error:  # RuntimeError: sent after the close
                raise ClientGone from error

    session = Session(send, lambda: state.fail("an unrecoverable GPU error in a live session"))
    stop = sessions.admit(session)
    if stop is None:
        held = f"holds {config.REALTIME_MAX_SESSIONS} live sessions (REALTIME_MAX_SESSIONS)"
        if config.REALTIME_MAX_SESSIONS == 0:
            held = "takes no live sessions (REALTIME_MAX_SESSIONS is 0)"
        why = "is shutting down" if sessions.closing else held
        await _deny(websocket, WorkerBusyError(f"the worker {why}; retry shortly"))
        return
    why = "the client left"
    live_engine.engine.session_opened()  # file work stays in short calls while a session is open
    try:
        await websocket.accept(subprotocol)
        log.info("live session %s opened (%d held)", session.id, len(sessions))
        await session.start()
        ending = await _serve(websocket, session, stop)
        if ending is not None:
            why = ending.code
            await _end(websocket, session, ending, send)
    except (ClientGone, WebSocketDisconnect):
        log.debug("a live session's client left while events were being sent")
    except Exception:
        why = "an internal error"
        log.exception("a live session failed")
    finally:
        session.close()
        sessions.release(session)
        live_engine.engine.session_closed()
        log.info(
            "live session %s ended (%s): %.1f s of audio, %d turns",
            session.id,
            why,
            session.audio_seconds,
            session.turns_committed,
        )


async def _serve(websocket: WebSocket, session: Session, stop: asyncio.Event) -> _Ending | None:
    """Reads the client's events until it leaves (None) or the server ends the session (why)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.REALTIME_MAX_SESSION_SECONDS
    while not stop.is_set():
        left = deadline - loop.time()
        idle = config.REALTIME_IDLE_TIMEOUT_SECONDS
        receiving = asyncio.ensure_future(websocket.receive())
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait(
            {receiving, stopping}, timeout=max(min(idle, left), 0), return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        if receiving not in done:
            receiving.cancel()
            if stopping in done:
                return _SHUTDOWN
            if left <= idle:
                minutes = config.REALTIME_MAX_SESSION_SECONDS / 60
                message = f"the session reached its longest, {minutes:g} min (REALTIME_MAX_SESSION_SECONDS)"
                return _Ending("session_expired", message, _NORMAL)
            message = f"no event for {idle:g} s (REALTIME_IDLE_TIMEOUT_SECONDS): the session is closed"
            return _Ending("idle_timeout", message, _NORMAL)
        message = receiving.result()
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            try:
                text = (message.get("bytes") or b"").decode("utf-8")
            except UnicodeDecodeError:
                text = ""  # answered as not JSON
        await session.handle(text)
    return _SHUTDOWN


async def _end(websocket: WebSocket, session: Session, ending: _Ending, send: Any) -> None:
    """Answers the session's turns, says why it ends, and closes the connection."""
    await session.drain()
    if websocket.client_state == WebSocketState.CONNECTED:
        await send(events.error(ending.message, ending.code, None, None, ending is _SHUTDOWN))
        await websocket.close(ending.close_code)
