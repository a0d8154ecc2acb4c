"""The HTTP face of the error contract: one status per `error_type`, in OpenAI's error body.

Every failure the server answers goes through `error_response`, so a status is decided here and only
here, and a body never holds more than the error's one-line message (no traceback, no host name).
"""

from typing import Any

from fastapi.responses import JSONResponse

import config

STATUS_BY_ERROR_TYPE = {
    # The request or its audio is wrong: the client can fix it.
    "invalid_input": 400,
    "url_rejected": 400,
    "not_found": 400,
    "access_denied": 400,
    "empty_audio": 400,
    "decode_timeout": 400,
    "too_many_channels": 400,
    "invalid_audio": 415,
    "no_audio_stream": 415,
    "unauthorized": 401,
    "unknown_route": 404,
    "upload_timeout": 408,
    "headers_too_large": 431,
    "payload_too_large": 413,
    "download_too_large": 413,
    "audio_too_long": 413,
    "result_too_large": 422,
    "unreliable_transcript": 422,
    # Something the request relied on, outside the worker.
    "fetch_failed": 502,
    "fetch_timeout": 504,
    # The worker cannot take it now: retrying later (or elsewhere) may work.
    "busy": 503,
    "out_of_memory": 503,
    "gpu_failure": 503,
    "model_load_failed": 503,
    "bootstrap_failed": 503,
    "cancelled": 503,
    "job_timeout": 504,
}
INTERNAL_STATUS = 500


def status_of(error_type: str) -> int:
    """The HTTP status for an `error_type` (500 for any not listed: diarization_failed, internal).

    Args:
        error_type: The contract's error type.

    Returns:
        The status.
    """
    return STATUS_BY_ERROR_TYPE.get(error_type, INTERNAL_STATUS)


def error_body(message: str, error_type: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body; `code` carries the contract's `error_type`.

    Args:
        message: The one-line message.
        error_type: The contract's error type.
        param: The request field it is about, when one is.

    Returns:
        `{"error": {"message", "type", "param", "code"}}`.
    """
    kind = "invalid_request_error" if status_of(error_type) < INTERNAL_STATUS else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": error_type}}


def error_response(
    message: str, error_type: str, param: str | None = None, retry_after: int | None = None
) -> JSONResponse:
    """The response for a failure, with `Retry-After` when the worker is full.

    Args:
        message: The one-line message.
        error_type: The contract's error type.
        param: The request field it is about, when one is.
        retry_after: The seconds to send in `Retry-After` with `busy` (default:
            `BUSY_RETRY_AFTER_SECONDS`).

    Returns:
        The JSON response.
    """
    headers = None
    if error_type == "busy":
        headers = {"Retry-After": str(retry_after or config.BUSY_RETRY_AFTER_SECONDS)}
    return JSONResponse(
        error_body(message, error_type, param), status_code=status_of(error_type), headers=headers
    )


def contract_error_response(result: dict[str, Any], retry_after: int | None = None) -> JSONResponse:
    """The response for a failed job's contract (`{"success": false, "error", "error_type"}`).

    Args:
        result: The failure contract.
        retry_after: `Retry-After` for `busy` (default: `BUSY_RETRY_AFTER_SECONDS`).

    Returns:
        The JSON response.
    """
    return error_response(result["error"], result["error_type"], retry_after=retry_after)
