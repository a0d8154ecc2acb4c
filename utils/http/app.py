"""The HTTP server's routes: OpenAI's transcription API, the queue's JSON contract, /ping and /v1/models.

Every job goes through `utils.job.pipeline.answer`, as queue jobs do, on a thread of the server's own pool, so
requests of different connections meet in the one model scheduler and share model calls. A request
takes one of `MAX_CONCURRENCY` slots before its body is read; a request that finds them all taken
waits in a short line (`utils.http.admission`), and one that cannot wait (the line is full, or its wait
ran out) answers 503 with `Retry-After` from the expected wait. A worker holding its audio budget
answers 503 as well. A client that disconnects cancels its job: its queued items leave the model's
queue, and its files are removed. JSON bodies are parsed off the event loop, within bounds.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

import config
from utils.asr import model as asr_model
from utils.asr.records import Word
from utils.contract import validation
from utils.contract.job_input import JobInput
from utils.errors import (
    InvalidInputError,
    UnauthorizedError,
    UnknownRouteError,
    WorkerBusyError,
    WorkerError,
)
from utils.http import admission, connection, errors, form, formats, json_body, openai_params, readiness
from utils.http.keys import check_key
from utils.job import dirs
from utils.job import pipeline as job_pipeline
from utils.job.deadline import Deadline
from utils.output import results
from utils.realtime import route as realtime_route
from utils.text import number_stream

log = logging.getLogger(__name__)

TRANSCRIPTIONS = "/v1/audio/transcriptions"
JSON_ROUTE = "/v1/jobs"
PING = "/ping"
OPENAPI = "/openapi.json"
# The JSON route's body holds base64 audio: room for MAX_BASE64_CHARS and the other fields.
_JSON_SLACK_BYTES = 1024 * 1024


def served_models() -> list[str]:
    """The ids of the models the server serves: a hub name as it is, a .nemo file by its stem.

    Returns:
        The ids, the default first.
    """
    return [asr_model.model_id(name) for name in asr_model.served_models()]


def served_languages() -> list[str]:
    """The languages the served models transcribe, together.

    Returns:
        ISO 639-1 codes, sorted.
    """
    return sorted({code for name in asr_model.served_models() for code in asr_model.languages(name)})


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "parakeet-worker"}


class _Jobs:
    """Runs jobs on the server's threads, each holding a slot of the admission line until it ends."""

    def __init__(self, state: readiness.Readiness, line: admission.Line) -> None:
        self._pool = ThreadPoolExecutor(max_workers=line.slots, thread_name_prefix="http-job")
        self._readiness = state
        self.line = line

    def start(
        self,
        job_input: dict[str, Any],
        options: job_pipeline.JobOptions,
        owned: TemporaryDirectory | None,
        slot: admission.Slot,
    ) -> tuple["Future[dict[str, Any]]", Deadline]:
        """Starts a job in the slot it was admitted to; the job gives the slot back when it ends.

        Args:
            job_input: The queue input.
            options: The front door's options (upload, stream).
            owned: A directory the job removes when it ends (the upload's).
            slot: The admission slot the request holds (the job's from now on).

        Returns:
            The future of the job's contract, and its deadline (also its cancellation).
        """
        deadline = Deadline(config.JOB_TIMEOUT_SECONDS)
        job = {"id": f"http-{uuid.uuid4().hex[:12]}", "input": job_input}
        return self._pool.submit(self._run, job, deadline, options, owned, slot), deadline

    def _run(
        self,
        job: dict[str, Any],
        deadline: Deadline,
        options: job_pipeline.JobOptions,
        owned: TemporaryDirectory | None,
        slot: admission.Slot,
    ) -> dict[str, Any]:
        try:
            result = job_pipeline.answer(job, lambda message: None, deadline, options)
        finally:
            if owned is not None:
                owned.cleanup()
            slot.release()
        if result.pop("refresh_worker", False):
            self._readiness.fail("an unrecoverable GPU error")
        return result

    def shutdown(self) -> None:
        """Lets running jobs finish and stops the threads."""
        self._pool.shutdown(wait=True)


# After a form's end a well-behaved client sends at most a line break; a watcher stops reading beyond this.
_TRAILING_BYTES = 1024


async def _cancel_on_disconnect(request: Request, deadline: Deadline) -> None:
    """Cancels the job when its client goes away (after the body was read, receive waits for that)."""
    trailing = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            deadline.cancel()
            return
        trailing += len(message.get("body", b""))
        if trailing > _TRAILING_BYTES:
            return  # bytes after the form's end: not read (the connection closes after the answer)


async def _finished(request: Request, future: "Future[dict[str, Any]]", deadline: Deadline) -> dict[str, Any]:
    """Waits for a job, cancelling it if the client disconnects first."""
    watcher = asyncio.create_task(_cancel_on_disconnect(request, deadline))
    try:
        return await asyncio.wrap_future(future)
    finally:
        watcher.cancel()


def _error(error: WorkerError, line: admission.Line) -> JSONResponse:
    retry_after = line.retry_after() if isinstance(error, WorkerBusyError) else None
    retry_after = getattr(error, "retry_after", None) or retry_after
    response = errors.error_response(str(error), error.error_type, retry_after=retry_after)
    if isinstance(error, UnauthorizedError):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _stream(
    params: openai_params.TranscriptionRequest,
    jobs: _Jobs,
    upload: TemporaryDirectory,
    file: Path,
    slot: admission.Slot,
) -> StreamingResponse:
    """Starts a job whose settled words come back as `transcript.text.delta` events."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[list[Word] | dict[str, Any]] = asyncio.Queue()

    def on_words(words: list[Word]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, words)

    options = job_pipeline.JobOptions(
        upload=file,
        wait_for_room=False,
        stream_window_seconds=config.STREAM_WINDOW_SECONDS,
        on_words=on_words,
    )
    future, deadline = jobs.start(params.job_input, options, upload, slot)
    future.add_done_callback(lambda done: loop.call_soon_threadsafe(events.put_nowait, done.result()))
    given = params.job_input.get("language")
    digits = number_stream.SettledDigits(given if isinstance(given, str) else None)
    as_digits = params.job_input.get("numbers") == "digits"

    async def body() -> AsyncIterator[str]:
        sent = ""
        try:
            while True:
                event = await events.get()
                if isinstance(event, list):
                    # Digits: a number's last words wait for the next window (the final text has the rest).
                    text = " ".join(word.word for word in (digits.feed(event) if as_digits else event))
                    if text:
                        delta = f" {text}" if sent else text
                        sent += delta
                        yield formats.sse(formats.delta_event(delta))
                    continue
                if not event.get("success"):
                    error = errors.error_body(event["error"], event["error_type"])
                    yield formats.sse({"type": "error", **error})
                    return
                for done_event in formats.done_events(event, sent, params.response_format):
                    yield formats.sse(done_event)
                return
        finally:
            if not future.done():
                deadline.cancel()  # the client went away: its items leave the model's queue

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _render(
    result: dict[str, Any], params: openai_params.TranscriptionRequest, line: admission.Line
) -> Response:
    if not result.get("success"):
        return errors.contract_error_response(result, retry_after=line.retry_after())
    rendered = formats.render(result, params.response_format, params.granularities)
    if rendered.json is not None:
        return JSONResponse(rendered.json)
    return PlainTextResponse(rendered.text, media_type=rendered.media_type)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document, with the job input's JSON Schema as the JSON route's body."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema = JobInput.model_json_schema(ref_template="#/components/schemas/{model}")
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["JobInput"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    return build


def _transcription_form() -> dict[str, Any]:
    """The transcription route's multipart form, for the OpenAPI document: the form's declaration, the
    file, and the served models' languages."""
    schema = openai_params.TranscriptionForm.model_json_schema()
    schema["properties"]["language"]["enum"] = served_languages()
    fields = {"file": {"type": "string", "format": "binary"}}
    for name, field in schema["properties"].items():
        # OpenAI's SDKs send the list as repeated `timestamp_granularities[]` fields.
        fields[f"{name}[]" if name == "timestamp_granularities" else name] = field
    schema["properties"], schema["required"] = fields, ["file"]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobInput"}}},
    }
}


def create_app(state: readiness.Readiness) -> FastAPI:
    """The server's application.

    Args:
        state: The server's readiness, answered on /ping and lowered by GPU failures.

    Returns:
        The FastAPI app (its jobs' threads stop with its lifespan). `app.state.admission` is its
        admission line, for routes mounted beside these.
    """
    line = admission.Line(
        config.MAX_CONCURRENCY,
        config.ADMISSION_WAIT_SECONDS,
        config.ADMISSION_QUEUE_MAX,
        typical_hold_seconds=config.BUSY_RETRY_AFTER_SECONDS,
    )
    jobs = _Jobs(state, line)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(jobs.shutdown)

    app = FastAPI(
        title="Parakeet transcription",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the key
    )
    app.state.admission = line
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    realtime_route.mount(app, state)  # the live door, GET /v1/realtime (WebSocket)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            return _error(UnknownRouteError(f"no route {request.method} {request.url.path[:64]}"), line)
        response = errors.error_response(str(error.detail), "invalid_input")
        response.status_code = error.status_code
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("request %s %s failed: %s", request.method, request.url.path[:64], type(error).__name__)
        return errors.error_response("internal error; the server logged the details", "internal")

    @app.api_route(PING, methods=["GET", "HEAD"], include_in_schema=False)
    async def ping() -> Response:
        if state.state == readiness.HEALTHY:
            return JSONResponse({"status": "healthy"})
        if state.state == readiness.FAILED:
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        return Response(status_code=204)

    @app.get(OPENAPI, include_in_schema=False)
    async def openapi(request: Request) -> Response:
        try:
            check_key(request)
        except WorkerError as error:
            return _error(error, line)
        return JSONResponse(app.openapi())

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        try:
            check_key(request)
        except WorkerError as error:
            return _error(error, line)
        return JSONResponse({"object": "list", "data": [_model_card(name) for name in served_models()]})

    @app.get("/v1/models/{model_id:path}")
    async def model(request: Request, model_id: str) -> Response:
        try:
            check_key(request)
            if model_id not in served_models():
                raise UnknownRouteError(f"model {model_id[:64]!r} is not served here")
        except WorkerError as error:
            return _error(error, line)
        return JSONResponse(_model_card(model_id))

    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        message = f"the model does not translate; it transcribes, at {TRANSCRIPTIONS}"
        return _error(UnknownRouteError(message), line)

    @app.post(TRANSCRIPTIONS, openapi_extra=_transcription_form())
    async def transcriptions(request: Request) -> Response:
        try:
            check_key(request)
            form.check_length(request.headers.get("content-length"))
            slot: admission.Slot | None = await line.enter(
                connection.connection_closed(request.scope)
            )  # the body waits unread until then
        except WorkerError as error:
            return _error(error, line)
        upload: TemporaryDirectory | None = dirs.job_directory()
        try:
            content_type = request.headers.get("content-type")
            received = await form.read_form(request.stream(), content_type, Path(upload.name))
            if received.file is None:
                raise InvalidInputError(
                    f"{validation.UPLOAD_FIELD} is required: send the audio in that form field"
                )
            params = openai_params.parse_form(received.fields, served_models())
            validation.parse_input(params.job_input, received.file)  # bad options fail before any work
            if params.stream:
                response = _stream(params, jobs, upload, received.file, slot)
                upload = slot = None  # the job removes the upload and gives the slot back
                return response
            options = job_pipeline.JobOptions(
                upload=received.file, wait_for_room=False, segment_details=params.segment_details
            )
            future, deadline = jobs.start(params.job_input, options, upload, slot)
            upload = slot = None
            return _render(await _finished(request, future, deadline), params, line)
        except WorkerError as error:
            return _error(error, line)
        finally:
            if upload is not None:
                upload.cleanup()
            if slot is not None:
                slot.release()

    @app.post(JSON_ROUTE, openapi_extra=_JSON_BODY)
    async def run_job(request: Request) -> Response:
        """Takes the queue job's `input` object and answers the queue's output contract."""
        retry_after = None
        slot: admission.Slot | None = None
        try:
            check_key(request)
            slot = await line.enter(connection.connection_closed(request.scope))
            body = await form.read_body(request.stream(), config.MAX_BASE64_CHARS + _JSON_SLACK_BYTES)
            job_input = await asyncio.to_thread(json_body.parse, body)
            future, deadline = jobs.start(job_input, job_pipeline.JobOptions(wait_for_room=False), None, slot)
            slot = None
            result = await _finished(request, future, deadline)
        except WorkerError as error:
            if isinstance(error, WorkerBusyError):
                retry_after = error.retry_after
            result = results.error_fields(error)
        finally:
            if slot is not None:
                slot.release()
        status = 200 if result.get("success") else errors.status_of(result["error_type"])
        response = JSONResponse(result, status_code=status)
        if status == 503 and result["error_type"] == "busy":
            response.headers["Retry-After"] = str(retry_after or line.retry_after())
        return response

    return app


def health_port_only(app: ASGIApp, port: int) -> ASGIApp:
    """Wraps `app` so that requests arriving on `port` get /ping and nothing else.

    Args:
        app: The server's application.
        port: The health port (`PORT_HEALTH`, when it differs from `PORT`).

    Returns:
        The wrapped application.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        if scope["type"] == "http" and server[1] == port and scope["path"] != PING:
            response = errors.error_response(f"only {PING} is served on port {port}", "unknown_route")
            await response(scope, receive, send)
            return
        if scope["type"] == "websocket" and server[1] == port:
            await send({"type": "websocket.close", "code": 1008})  # before accepting: refused (403)
            return
        await app(scope, receive, send)

    return wrapped
