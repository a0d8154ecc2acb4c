"""RunPod serverless entry point: wires validation, sources, audio, the transcriber and results together.

Every job ends in the output contract (DESIGN.md): `{"success": true, "text", "duration", ...}` (or,
for a batch, `{"success": true, "results": [...]}`) or `{"success": false, "error", "error_type"}`.
The handler never raises: an exception escaping to the RunPod SDK would send its traceback and
hostname to the client.
"""

import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import runpod

import config
from utils import audio, results, s3, transcriber, validation
from utils.deadline import Deadline
from utils.errors import GpuFailureError, WorkerError

log = logging.getLogger("parakeet.handler")

INTERNAL_ERROR_MESSAGE = "internal error while transcribing; the worker logged the details"


class InternalError(WorkerError):
    """Stands in for an unexpected exception (already logged) in a batch item's result."""

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR_MESSAGE)


@dataclass
class PreparedItem:
    """One item after fetching and converting: its samples, or the error that stopped it."""

    samples: np.ndarray | None = None
    error: WorkerError | None = None
    fetch_seconds: float = 0.0
    convert_seconds: float = 0.0


def prepare_item(item: validation.AudioItem, item_dir: Path, deadline: Deadline) -> PreparedItem:
    """Fetches one item's audio into `item_dir` and decodes it; raises on failure.

    Args:
        item: The validated item.
        item_dir: A fresh directory inside the job's temporary directory.
        deadline: The job's deadline; the download and ffmpeg get no more than its time left.

    Returns:
        The decoded item with its stage timings.
    """
    item_dir.mkdir()
    with deadline.applied():
        deadline.check()  # a batch item may start late
        started = time.perf_counter()
        if item.source_field == "audio_base64":
            path = s3.save_base64(item.source, item_dir)
        else:
            path = s3.download(item.source, item_dir)
        deadline.check()
        fetched = time.perf_counter()
        samples = audio.decode(path)
    path.unlink()  # the samples are in memory; free the disk early
    return PreparedItem(samples, None, fetched - started, time.perf_counter() - fetched)


def prepare_batch_item(item: validation.AudioItem, item_dir: Path, deadline: Deadline) -> PreparedItem:
    """Like `prepare_item`, but a failure becomes the item's error so other items go on."""
    try:
        return prepare_item(item, item_dir, deadline)
    except WorkerError as error:
        return PreparedItem(error=error)
    except Exception:
        log.exception("batch item %s failed with an unexpected error", item_dir.name)
        return PreparedItem(error=InternalError())


def report_progress(job: dict[str, Any], message: str) -> None:
    """Tells RunPod how a long job is going (visible in /status while the job runs).

    Args:
        job: The RunPod job.
        message: A short progress line.
    """
    if config.SEND_PROGRESS_UPDATES:
        runpod.serverless.progress_update(job, message)


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
    with tempfile.TemporaryDirectory(prefix=config.JOB_DIR_PREFIX, dir=config.TEMP_ROOT) as job_dir:
        item_dirs = [Path(job_dir) / f"item-{index}" for index in range(len(request.items))]
        if request.is_batch:
            with ThreadPoolExecutor(max_workers=config.FETCH_CONCURRENCY) as pool:
                prepared = list(pool.map(prepare_batch_item, request.items, item_dirs, repeat(deadline)))
        else:
            prepared = [prepare_item(request.items[0], item_dirs[0], deadline)]
    # Stage boundary. Checked even when no item is ready: a batch cut short by the deadline fails whole.
    deadline.check()

    ready = [index for index, item in enumerate(prepared) if item.samples is not None]
    timings = results.Timings(
        fetch=sum(item.fetch_seconds for item in prepared),
        convert=sum(item.convert_seconds for item in prepared),
        audio=sum(prepared[index].samples.size for index in ready) / config.SAMPLE_RATE,
    )
    kinds = results.timestamp_kinds_needed(request.timestamp_kinds, request.output_formats)
    transcripts: dict[int, transcriber.Transcript] = {}
    model: dict[str, str] = {}
    if ready:
        model = transcriber.model_info()  # loads the model on a worker's first job, outside the timer
        transcribe_started = time.perf_counter()

        def progress(message: str) -> None:
            # Called between model calls (batches, windows): the job stops there when its time is up.
            deadline.check()
            report_progress(job, message)

        outputs = transcriber.transcribe_batch(
            [prepared[index].samples for index in ready], kinds, progress=progress
        )
        transcripts = dict(zip(ready, outputs, strict=True))
        timings.transcribe = time.perf_counter() - transcribe_started

    item_results = []
    for index, item in enumerate(prepared):
        if item.error is not None:
            item_results.append(results.error_fields(item.error))
            continue
        transcript = transcripts[index]
        duration = item.samples.size / config.SAMPLE_RATE
        fields = results.transcript_fields(
            transcript, duration, request.timestamp_kinds, request.output_formats
        )
        item_results.append({"success": True, **fields, "meta": results.item_meta(transcript)})
    meta = results.job_meta(model, timings, time.perf_counter() - started)
    log.info(
        "job %s: %.1f s of audio in %.2f s", job.get("id"), timings.audio, meta["processing_seconds"]["total"]
    )

    if request.is_batch:
        for item, item_result in zip(request.items, item_results, strict=True):
            if item.id is not None:
                item_result["id"] = item.id
        failed = sum(not r["success"] for r in item_results)
        result = {"success": True, "results": item_results, "failed": failed, "meta": meta}
    else:
        single = item_results[0]
        result = {**single, "meta": {**single["meta"], **meta}}
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
    runpod.serverless.start({"handler": handler})
