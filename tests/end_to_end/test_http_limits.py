"""The HTTP door under abuse, with the bundled model behind a real uvicorn on 127.0.0.1: deep nesting on
both doors, a client that leaves a long job, a deadline on long audio on a CPU, slow uploads, the form's
field limit and the key on the OpenAPI document. Limits are shortened through the config variables."""

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import config
import handler
from tests.support.http_server import RunningServer, get, http_server, multipart, post
from tests.support.media import b64, encode, speech
from tests.support.model_spy import ModelSpy

WORDS = "three one four"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(speech(WORDS), tmp_path_factory.mktemp("clip") / "clip.flac")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 50 s of counting with pauses: five model calls of 10 s on a CPU bounded to that."""
    gap = np.zeros(2 * config.SAMPLE_RATE, dtype=np.float32)
    phrases = ["one two three", "four five six", "seven eight nine"] * 4
    samples = np.concatenate([part for phrase in phrases for part in (speech(phrase), gap)])
    return encode(samples, tmp_path_factory.mktemp("long") / "long.flac")


@pytest.fixture
def server(job_root: Path) -> Iterator[RunningServer]:
    with http_server() as running:
        yield running


def nested(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


# --- Deep nesting is bad input, on both doors ---


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000,
        ('{"audio_base64": "AAAA", "hotwords": ' + nested(3000) + "}").encode(),
        ('{"audio_base64": "AAAA", "subtitle_options": {"a": ' + nested(10_000) + "}}").encode(),
    ],
    ids=["brackets", "hotwords", "subtitle_options"],
)
def test_a_deeply_nested_json_body_is_bad_input(
    server: RunningServer, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        status, _, answer = post(server.port, "/v1/jobs", body, "application/json")
    result = json.loads(answer)
    assert (status, result["error_type"]) == (400, "invalid_input"), result
    assert result["error"] == "the request body is nested too deeply: at most 32 levels"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("field", ["hotwords", "subtitle_options"])
def test_a_deeply_nested_form_option_is_bad_input_naming_it(
    server: RunningServer, clip: Path, field: str
) -> None:
    body, content_type = multipart([(field, nested(3000))], clip.read_bytes())
    status, _, answer = post(server.port, "/v1/audio/transcriptions", body, content_type)
    error = json.loads(answer)["error"]
    assert (status, error["code"]) == (400, "invalid_input")
    assert error["message"] == f"{field} is nested too deeply: at most 32 levels"


@pytest.mark.parametrize("field", ["hotwords", "subtitle_options"])
def test_the_queue_door_refuses_deep_nesting_naming_the_field(clip: Path, field: str, job_root: Path) -> None:
    value = json.loads(nested(900))  # as deep as the SDK's own parser lets through
    result = handler.handler({"id": "deep", "input": {"audio_base64": b64(clip), field: value}})
    assert result == {
        "success": False,
        "error": f"{field} is nested too deeply: at most 32 levels",
        "error_type": "invalid_input",
    }


# --- Disconnects and deadlines hold on a CPU ---


def test_a_client_that_leaves_a_long_job_stops_its_model_calls(
    long_clip: Path, monkeypatch: pytest.MonkeyPatch, job_root: Path
) -> None:
    monkeypatch.setattr(config, "CPU_MAX_CALL_SECONDS", 10.0)
    spy = ModelSpy(monkeypatch)
    spy.delay = 1.0
    body, content_type = multipart([], long_clip.read_bytes())
    with http_server() as running:
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            head = (
                f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            while not spy.calls:
                time.sleep(0.01)
        time.sleep(4)  # a whole job would make five calls of a second or more each
    assert max(sum(call) for call in spy.calls) <= 10 * config.SAMPLE_RATE
    assert len(spy.calls) <= 2, spy.calls


def test_a_deadline_on_long_audio_holds_on_a_cpu(
    server: RunningServer, long_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "CPU_MAX_CALL_SECONDS", 10.0)
    monkeypatch.setattr(config, "JOB_TIMEOUT_SECONDS", 2.0)
    spy = ModelSpy(monkeypatch)
    spy.delay = 1.0
    body, content_type = multipart([], long_clip.read_bytes())
    status, _, answer = post(server.port, "/v1/audio/transcriptions", body, content_type)
    assert (status, json.loads(answer)["error"]["code"]) == (504, "job_timeout")
    assert max(sum(call) for call in spy.calls) <= 10 * config.SAMPLE_RATE
    assert len(spy.calls) <= 3, spy.calls  # stopped between the 10 s calls, not after all five


# --- Uploads, forms, keys ---


def test_an_upload_slower_than_the_minimum_rate_is_refused(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "UPLOAD_IDLE_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(config, "UPLOAD_MIN_BYTES_PER_SECOND", 1000)
    body, content_type = multipart([], b"x" * 20_000)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = (
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        answer = b""
        sock.settimeout(0.3)
        for offset in range(0, len(body), 100):  # 100 bytes every 0.3 s: never idle, far too slow
            try:
                sock.sendall(body[offset : offset + 100])
                answer += sock.recv(65536)
                break
            except TimeoutError:
                continue
            except OSError:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"UPLOAD_MIN_BYTES_PER_SECOND" in answer


def test_the_field_limit_counts_text_fields_only(server: RunningServer) -> None:
    def error_of(count: int) -> str:
        body, content_type = multipart([("colour", "blue")] * count, b"x")
        status, _, answer = post(server.port, "/v1/audio/transcriptions", body, content_type)
        assert status == 400
        return json.loads(answer)["error"]["message"]

    limit = config.MAX_FORM_FIELDS
    assert error_of(limit).startswith("unknown form field(s)")  # 64 text fields and a file: within it
    assert error_of(limit + 1) == f"the form has more than {limit} text fields"


def test_the_openapi_document_is_behind_the_key(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "API_KEY", "s3cret")
    status, body = get(server.port, "/openapi.json")
    assert (status, json.loads(body)["error"]["code"]) == (401, "unauthorized")
    status, body = get(server.port, "/openapi.json", Authorization="Bearer s3cret")
    assert status == 200
    assert "JobInput" in json.loads(body)["components"]["schemas"]
    assert get(server.port, "/docs", Authorization="Bearer s3cret")[0] == 404  # no documentation page


def test_meta_names_a_nemo_model_by_its_id(server: RunningServer, clip: Path) -> None:
    body = json.dumps({"audio_base64": b64(clip)}).encode()
    status, _, answer = post(server.port, "/v1/jobs", body, "application/json")
    meta = json.loads(answer)["meta"]
    assert status == 200
    assert meta["model"] == config.BUNDLED_TEST_MODEL.stem
    assert "/" not in json.dumps(meta)
