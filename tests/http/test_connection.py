"""Bounded reading under a real uvicorn on 127.0.0.1, with raw sockets sending what no client would:
heads too large or too slow, too many connections, malformed HTTP, bytes after a form's end, idle
keep-alive connections, and /ping answering while all of that goes on; live WebSocket upgrades pass
through the same bounds. The limits are shortened
through the config variables."""

import http.client
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.sync.client import connect as ws_connect

import config
from tests.support.http_server import RunningServer, get, http_server, multipart
from tests.support.worker import ping
from utils.http import connection
from utils.http.readiness import HEALTHY


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, job_root: object) -> Iterator[RunningServer]:
    monkeypatch.setattr(config, "MAX_HEADER_BYTES", 4096)
    monkeypatch.setattr(config, "MAX_HEADERS", 20)
    monkeypatch.setattr(config, "HEADERS_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(config, "KEEP_ALIVE_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(config, "MAX_CONNECTIONS", 6)
    with http_server(load=False) as running:  # no model: these answers come before any job
        yield running


def read_all(sock: socket.socket, seconds: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (TimeoutError if it has not within
    `seconds`)."""
    sock.settimeout(seconds)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def sent_before_refusal(sock: socket.socket, chunks: Iterator[bytes]) -> int | None:
    """Sends chunks until the server closes the connection; the bytes sent by then (None: never closed)."""
    sent = 0
    for chunk in chunks:
        try:
            sock.sendall(chunk)
        except OSError:
            return sent
        sent += len(chunk)
        time.sleep(0.0005)
    return None


def status_and_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def open_connection(server: RunningServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_a_head_over_the_limit_gets_431_in_the_error_shape(server: RunningServer) -> None:
    with open_connection(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        status, error = status_and_error(read_all(sock))
    assert status == 431
    assert error["code"] == "headers_too_large"
    assert "MAX_HEADER_BYTES" in error["message"]


def test_a_head_streamed_without_end_is_cut_off_at_the_limit(server: RunningServer) -> None:
    with open_connection(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        lines = (b"X-Line: " + b"b" * 1014 + b"\r\n" for _ in range(64 * 1024))  # 64 MiB of header lines
        sent = sent_before_refusal(sock, lines)
    assert sent is not None
    assert sent < 8 * 1024 * 1024  # the limit, and what the kernel's buffers held
    assert get(server.port, "/ping")[0] == 204


def test_too_many_headers_get_431(server: RunningServer) -> None:
    lines = b"".join(f"X-H{i}: v\r\n".encode() for i in range(25))
    with open_connection(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        status, error = status_and_error(read_all(sock))
    assert (status, error["code"]) == (431, "headers_too_large")
    assert "MAX_HEADERS" in error["message"]


def test_a_head_that_comes_too_slowly_gets_408_and_ping_answers_meanwhile(server: RunningServer) -> None:
    with open_connection(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\n")
        answered_meanwhile = get(server.port, "/ping")[0]  # while the slow head is under way
        for _ in range(6):  # a byte every 0.3 s: never idle, but the head takes too long
            time.sleep(0.3)
            try:
                sock.sendall(b"X")
            except OSError:
                break
        answer = read_all(sock)
    assert answered_meanwhile == 204
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (408, "upload_timeout")
    assert "HEADERS_TIMEOUT_SECONDS" in error["message"]


def test_a_connection_that_sends_nothing_is_closed(server: RunningServer) -> None:
    with open_connection(server) as sock:
        assert read_all(sock, seconds=10) == b""  # closed (at HEADERS_TIMEOUT_SECONDS), not left open


def test_an_idle_keep_alive_connection_is_closed(server: RunningServer) -> None:
    with open_connection(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_all(sock, seconds=10)  # the answer, then the close at KEEP_ALIVE_TIMEOUT_SECONDS
    assert answer.startswith(b"HTTP/1.1 204")


def test_connections_past_the_bound_are_refused_and_ping_still_answers(server: RunningServer) -> None:
    held = [open_connection(server) for _ in range(config.MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        with open_connection(server) as extra:
            status, error = status_and_error(read_all(extra))
        assert (status, error["code"]) == (503, "busy")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert get(server.port, "/ping")[0] == 204  # the held ones gone, there is room again


def test_malformed_http_gets_400_in_the_error_shape(server: RunningServer) -> None:
    with open_connection(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost x no colon\r\n\r\n")
        status, error = status_and_error(read_all(sock))
    assert (status, error["code"]) == (400, "invalid_input")
    assert "well-formed" in error["message"]


@pytest.mark.parametrize(
    "after_head",
    [
        b"fffffffffffffffffff\r\nabc",  # a chunk size past any integer, mid-body
        b"5\r\nabcde\r\nGARBAGE\r\n",  # a chunk without its size line
    ],
)
def test_a_body_broken_mid_request_gets_400_in_the_error_shape(
    server: RunningServer, after_head: bytes
) -> None:
    with open_connection(server) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + after_head
        )
        status, error = status_and_error(read_all(sock))
    assert (status, error["code"]) == (400, "invalid_input")


def test_a_content_length_short_of_the_body_gets_400_in_the_error_shape(server: RunningServer) -> None:
    body, content_type = multipart([], b"x" * 1000)
    with open_connection(server) as sock:
        head = (
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body) - 50}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)  # the last 50 bytes are read as a next request's head
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    status, error = status_and_error(answer)
    assert status == 400, error


def test_head_ping_answers(server: RunningServer) -> None:
    with open_connection(server) as sock:
        sock.sendall(b"HEAD /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 204")


def test_nothing_after_a_forms_end_is_read(server: RunningServer) -> None:
    body, content_type = multipart([("colour", "blue")], b"x")
    junk = b"j" * (8 * 1024 * 1024)
    with open_connection(server) as sock:
        head = (
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body) + len(junk)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        answer = b""
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        chunks = (junk[offset : offset + 65536] for offset in range(0, len(junk), 65536))
        refused = sent_before_refusal(sock, chunks)  # the answer closed the connection: junk never read
    assert refused is not None
    head, _, _ = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"connection: close" in head.lower()


def test_an_answer_before_the_body_closes_the_connection(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal sent before the body was read (here: no key) must not read the rest of the body."""
    monkeypatch.setattr(config, "API_KEY", "s3cret")
    with open_connection(server) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n{"
        )
        answer = read_all(sock)
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 401"), answer[:300]
    assert b"connection: close" in head


def test_the_answer_shape_is_the_error_body() -> None:
    raw = connection._answer("busy", "full", retry_after=7)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"retry-after: 7" in head
    error = {"message": "full", "type": "server_error", "param": None, "code": "busy"}
    assert json.loads(body) == {"error": error}


def test_ping_answers_while_hostile_json_bodies_arrive(server: RunningServer) -> None:
    body = b"[" + b"[]," * 2_000_000 + b"[]]"  # 6 MB of empty arrays, four times at once

    def hostile() -> int:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            connection.request("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
            return connection.getresponse().status
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        posts = [pool.submit(hostile) for _ in range(4)]
        pings = []
        while not all(post.done() for post in posts):
            pings.append(ping(server.port))  # None when no answer came within its 2 s
    assert [post.result() for post in posts] == [400] * 4
    assert pings
    assert set(pings) == {204}


def test_live_websockets_pass_through_the_bounds(server: RunningServer) -> None:
    server.readiness.state = HEALTHY  # the live route takes sessions (none of them sends audio here)
    url = f"ws://127.0.0.1:{server.port}/v1/realtime?intent=transcription"
    handshake = (
        b"GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    # A handshake whose head is over the limit is refused before any upgrade.
    with open_connection(server) as sock:
        sock.sendall(handshake + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n")
        status, error = status_and_error(read_all(sock))
    assert (status, error["code"]) == (431, "headers_too_large")
    sessions = [ws_connect(url, open_timeout=10) for _ in range(config.MAX_CONNECTIONS)]
    try:
        assert all(json.loads(session.recv(10))["type"] == "session.created" for session in sessions)
        # Upgraded connections outlive the head's deadline and the keep-alive timeout (1 s each here)...
        time.sleep(2.5)
        for session in sessions:
            session.send(json.dumps({"type": "input_audio_buffer.clear"}))
            assert json.loads(session.recv(10))["type"] == "input_audio_buffer.cleared"
        # ...and count toward MAX_CONNECTIONS.
        with open_connection(server) as extra:
            status, error = status_and_error(read_all(extra))
        assert (status, error["code"]) == (503, "busy")
    finally:
        for session in sessions:
            session.close()
    time.sleep(0.2)
    assert get(server.port, "/ping")[0] == 200  # the sessions gone, there is room again
