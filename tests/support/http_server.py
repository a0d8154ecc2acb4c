"""The HTTP server's app under a real uvicorn on 127.0.0.1, in the test's own process (so that tests can
set `config` values and spy on the model), and raw multipart requests for bad input."""

import http.client
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from tests.support.worker import SERVER_START_SECONDS, free_port
from utils.http import app as http_app
from utils.http import connection
from utils.http.readiness import HEALTHY, Readiness
from utils.job import pipeline as job_pipeline


@dataclass(frozen=True)
class RunningServer:
    """A server serving the app on a port of 127.0.0.1."""

    url: str
    port: int
    readiness: Readiness
    app: FastAPI


@contextmanager
def http_server(load: bool = True) -> Iterator[RunningServer]:
    """Serves a fresh app on 127.0.0.1 until the block ends.

    Args:
        load: Load the model first and start healthy (False: stay `starting`, nothing loaded).

    Yields:
        The running server.
    """
    state = Readiness()
    if load:
        job_pipeline.load_models()
        state.state = HEALTHY
    port = free_port()
    app = http_app.create_app(state)
    server = uvicorn.Server(connection.server_config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        assert thread.is_alive(), "uvicorn exited at start"
        assert time.monotonic() - started < SERVER_START_SECONDS, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", port, state, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def multipart(
    fields: list[tuple[str, str]], file: bytes | None = None, filename: str = "a.flac"
) -> tuple[bytes, str]:
    """Builds a multipart/form-data body by hand (for bodies the official client would not send).

    Args:
        fields: Text fields, in order.
        file: The `file` part's bytes (None: no file part).
        filename: The file part's file name.

    Returns:
        The body and its Content-Type.
    """
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    if file is not None:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def get(port: int, path: str, **headers: str) -> tuple[int, bytes]:
    """Sends one GET to 127.0.0.1.

    Returns:
        Status and body.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post(
    port: int, path: str, body: bytes, content_type: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """Sends one POST to 127.0.0.1 and reads the whole answer.

    Returns:
        Status, headers (lower-case names) and body.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type, **headers})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
