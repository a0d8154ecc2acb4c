"""One HTTP status per error type, and OpenAI's error body."""

import inspect
import json

import pytest

import config
from utils import errors as worker_errors
from utils.http import errors

ERROR_TYPES = sorted(
    {
        kind.error_type
        for _, kind in inspect.getmembers(worker_errors, inspect.isclass)
        if issubclass(kind, worker_errors.WorkerError)
    }
)


def test_every_error_type_but_the_internal_ones_has_its_status() -> None:
    unmapped = [kind for kind in ERROR_TYPES if kind not in errors.STATUS_BY_ERROR_TYPE]
    assert unmapped == ["diarization_failed", "internal"]  # both are our failures: 500
    assert {errors.status_of(kind) for kind in unmapped} == {500}


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("invalid_input", 400),
        ("unauthorized", 401),
        ("unknown_route", 404),
        ("payload_too_large", 413),
        ("invalid_audio", 415),
        ("busy", 503),
        ("job_timeout", 504),
        ("internal", 500),
    ],
)
def test_statuses_follow_the_error_type(error_type: str, status: int) -> None:
    assert errors.status_of(error_type) == status


def test_the_body_is_openais_with_our_error_type_as_code() -> None:
    assert errors.error_body("file is empty", "empty_audio") == {
        "error": {
            "message": "file is empty",
            "type": "invalid_request_error",
            "param": None,
            "code": "empty_audio",
        }
    }
    assert errors.error_body("x", "job_timeout")["error"]["type"] == "server_error"


def test_only_busy_says_when_to_retry() -> None:
    busy = errors.error_response("full", "busy")
    assert (busy.status_code, busy.headers["retry-after"]) == (503, str(config.BUSY_RETRY_AFTER_SECONDS))
    assert "retry-after" not in errors.error_response("no", "invalid_input").headers
    assert json.loads(busy.body)["error"]["code"] == "busy"
