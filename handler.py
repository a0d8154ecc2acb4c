"""RunPod serverless entry point: wires validation, sources, audio, the transcriber and results together.

Every job ends in the output contract (DESIGN.md): `{"success": true, "text", "duration", ...}` (or,
for a batch, `{"success": true, "results": [...]}`) or `{"success": false, "error", "error_type"}`.
The handler never raises: an exception escaping to the RunPod SDK would send its traceback and
hostname to the client.
"""

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import runpod

import bootstrap
import config
from utils import fitness, preparation, results, s3, transcriber, validation
from utils.deadline import Deadline
from utils.errors import GpuFailureError, InternalError, WorkerError

log = logging.getLogger("parakeet.handler")


def report_progress(job: dict[str, Any], message: str) -> None:
    """Tells RunPod how a long job is going (visible in /status while the job runs).

    Args:
        job: The RunPod job.
        message: A short progress line.
    """
    if config.SEND_PROGRESS_UPDATES:
        runpod.serverless.progress_update(job, message)


def transcribe_ready(
    job: dict[str, Any], ready: dict[int, np.ndarray], kinds: frozenset[str], deadline: Deadline
) -> tuple[dict[int, transcriber.Transcript], dict[str, str], float]:
    """Transcribes the items that have samples, building the volume environment first if needed.

    Args:
        job: The RunPod job (for progress updates).
        ready: Samples by item index.
        kinds: Timestamp kinds to compute.
        deadline: The job's deadline, checked between model calls.

    Returns:
        Transcripts by item index, the model description for `meta`, and the seconds spent transcribing
        (the model load of a worker's first job excluded).
    """
    if not ready:
        return {}, {}, 0.0
    bootstrap.ensure_environment(lambda message: report_progress(job, message))
    model = transcriber.model_info()  # loads the model on a worker's first job

    def progress(message: str) -> None:
        # Called between model calls (batches, windows): the job stops there when its time is up.
        deadline.check()
        report_progress(job, message)

    started = time.perf_counter()
    outputs = transcriber.transcribe_batch(list(ready.values()), kinds, progress=progress)
    return dict(zip(ready, outputs, strict=True)), model, time.perf_counter() - started


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Runs one job; raises on a failure of the whole job.

    Args:
        job: The RunPod job; the client's payload is under "input".

    Returns:
        The success contract.

    Raises:
        WorkerError: Any failure a client can act on.
    """
    started = time.perf_counter()
    deadline = Deadline(config.JOB_TIMEOUT_SECONDS)
    request = validation.parse_input(job.get("input"))
    if request.output_url is not None:
        s3.check_output_url(request.output_url)  # a bad target fails now, not after the work is done
    with tempfile.TemporaryDirectory(prefix=config.JOB_DIR_PREFIX, dir=config.TEMP_ROOT) as job_dir:
        prepared = preparation.prepare_items(request, Path(job_dir), deadline)
    # Stage boundary. Checked even when no item is ready: a batch cut short by the deadline fails whole.
    deadline.check()

    timings = results.Timings.of(prepared)
    ready = {index: item.samples for index, item in enumerate(prepared) if item.samples is not None}
    kinds = results.timestamp_kinds_needed(request.timestamp_kinds, request.output_formats)
    transcripts, model, timings.transcribe = transcribe_ready(job, ready, kinds, deadline)
    meta = results.job_meta(model, timings, time.perf_counter() - started)
    log.info(
        "job %s: %.1f s of audio in %.2f s", job.get("id"), timings.audio, meta["processing_seconds"]["total"]
    )
    result = results.build_result(request, prepared, transcripts, meta)
    with deadline.applied():
        return results.fit_result(result, request.output_url)


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The RunPod handler: one job in, one contract-shaped result out, never an exception.

    Args:
        job: The RunPod job, with the client's payload under "input".

    Returns:
        The success or failure contract; `refresh_worker: true` after an unrecoverable GPU error.
    """
    try:
        return run_job(job)
    except GpuFailureError as error:
        log.error("job %s: GPU failure, asking RunPod to replace this worker", job.get("id"))
        return {**results.error_fields(error), "refresh_worker": True}
    except WorkerError as error:
        log.info("job %s failed: %s (%s)", job.get("id"), error, error.error_type)
        return results.error_fields(error)
    except Exception:
        log.exception("job %s failed with an unexpected error", job.get("id"))
        return results.error_fields(InternalError())


def configure_logging() -> None:
    """Logs at INFO; the HTTP and S3 libraries never below INFO, as their DEBUG lines quote presigned URLs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("urllib3", "botocore", "boto3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.INFO)


if __name__ == "__main__":
    configure_logging()
    fitness.register()
    runpod.serverless.start({"handler": handler})
