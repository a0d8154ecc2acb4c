"""RunPod serverless entry point: wires validation, sources, audio and the transcriber together.

Every job ends in the output contract (DESIGN.md): `{"success": true, "text", "duration", ...}` or
`{"success": false, "error", "error_type"}`. The handler never raises: an exception escaping to the
RunPod SDK would send its traceback and hostname to the client.
"""

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import runpod

import config
from utils import audio, s3, transcriber, validation
from utils.errors import WorkerError

log = logging.getLogger("parakeet.handler")

INTERNAL_ERROR_MESSAGE = "internal error while transcribing; the worker logged the details"


def fetch_audio(request: validation.JobRequest, job_dir: Path) -> Path:
    """Puts the job's audio into `job_dir`, from base64 or a URL.

    Args:
        request: The validated job.
        job_dir: The job's private temporary directory.

    Returns:
        The path of the audio file.
    """
    if request.source_field == "audio_base64":
        return s3.save_base64(request.source, job_dir)
    return s3.download(request.source, job_dir)


def error_result(error: WorkerError) -> dict[str, Any]:
    """Builds the failure contract from a worker error.

    Args:
        error: The error; its message is meant for the client.

    Returns:
        `{"success": False, "error": str, "error_type": str}`.
    """
    return {"success": False, "error": str(error), "error_type": error.error_type}


def run_job(job_input: Any) -> dict[str, Any]:
    """Runs one transcription job; raises on failure.

    Args:
        job_input: `job["input"]` as RunPod delivers it.

    Returns:
        The success contract.

    Raises:
        WorkerError: Any failure a client can act on.
    """
    started = time.perf_counter()
    request = validation.parse_input(job_input)
    with tempfile.TemporaryDirectory(prefix=config.JOB_DIR_PREFIX, dir=config.TEMP_ROOT) as job_dir:
        path = fetch_audio(request, Path(job_dir))
        samples = audio.decode(path)
    duration = samples.size / config.SAMPLE_RATE
    transcript = transcriber.transcribe(samples, request.timestamp_kinds)
    result: dict[str, Any] = {"success": True, "text": transcript.text, "duration": round(duration, 3)}
    if request.timestamp_kinds:
        result["timestamps"] = transcript.timestamps
    log.info(
        "transcribed %.1f s of audio in %.2f s (%s attention)",
        duration,
        time.perf_counter() - started,
        transcript.attention,
    )
    return result


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The RunPod handler: one job in, one contract-shaped result out, never an exception.

    Args:
        job: The RunPod job, with the client's payload under "input".

    Returns:
        The success or failure contract.
    """
    try:
        return run_job(job.get("input"))
    except WorkerError as error:
        log.info("job %s failed: %s (%s)", job.get("id"), error, error.error_type)
        return error_result(error)
    except Exception:
        log.exception("job %s failed with an unexpected error", job.get("id"))
        return {"success": False, "error": INTERNAL_ERROR_MESSAGE, "error_type": "internal"}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runpod.serverless.start({"handler": handler})
