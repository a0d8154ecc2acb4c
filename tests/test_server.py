"""`python server.py` as it is deployed: /ping from the first second, the health port, a failed start,
and SIGTERM finishing the requests in flight."""

import json
import signal
import socket
import time
from pathlib import Path

import openai
import pytest

from tests.support.http_server import multipart
from tests.support.media import encode, speech
from tests.support.worker import http_server_process, ping

WORDS = "four two zero"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(speech(WORDS), tmp_path_factory.mktemp("clip") / "clip.flac")


def wait_healthy(port: int, seconds: float = 120) -> list[int | None]:
    seen = []
    started = time.monotonic()
    while (status := ping(port)) != 200:
        seen.append(status)
        assert status != 503, "start-up failed"
        assert time.monotonic() - started < seconds, seen[-5:]
        time.sleep(0.05)
    return seen


def test_the_server_starts_answers_and_serves_ping_on_its_health_port(tmp_path: Path, clip: Path) -> None:
    with http_server_process(tmp_path / "server.log") as server:
        seen = wait_healthy(server.health_port)
        assert set(seen) <= {204, None}
        assert ping(server.port) == 200
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with clip.open("rb") as file:
            assert api.audio.transcriptions.create(model="x", file=file).text == WORDS
        health = openai.OpenAI(
            base_url=f"http://127.0.0.1:{server.health_port}/v1", api_key="x", max_retries=0
        )
        with pytest.raises(openai.NotFoundError):
            health.models.list()  # the health port serves /ping only


def test_a_failed_start_answers_503_and_logs_why(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with http_server_process(log, PARAKEET_MODEL=str(tmp_path / "missing.nemo")) as server:
        started = time.monotonic()
        while (status := ping(server.port)) != 503:
            assert status in (204, None), status
            assert time.monotonic() - started < 120
            time.sleep(0.05)
    assert "start-up failed" in log.read_text()


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path: Path, clip: Path) -> None:
    body, content_type = multipart([("response_format", "json")], clip.read_bytes())
    temp = tmp_path / "temp"
    temp.mkdir()
    with http_server_process(tmp_path / "server.log", PARAKEET_TEMP_DIR=str(temp)) as server:
        wait_healthy(server.port)
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            head = (
                f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + body[: len(body) // 2])
            time.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)  # while the upload is half sent
            time.sleep(0.5)
            sock.sendall(body[len(body) // 2 :])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK", answer
        assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["text"] == WORDS
        assert server.process.wait(timeout=60) == 0  # a graceful stop is a normal exit
    assert list(temp.iterdir()) == []  # the process's own temporary directory went with it
