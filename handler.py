"""RunPod serverless entry point: start-up order, and the job threads off the SDK's event loop.

Every job ends in the output contract: `{"success": true, "text", "duration", ...}` (or,
for a batch, `{"success": true, "results": [...]}`) or `{"success": false, "error", "error_type"}`.
The handler never raises: an exception escaping to the RunPod SDK would send its traceback and
hostname to the client. The one exception is cancellation (RunPod's /cancel or execution timeout),
which reaches `async_handler` as `asyncio.CancelledError` and is re-raised once the job has stopped.

RunPod gives the worker up to `MAX_CONCURRENCY` jobs at once. Each runs on a thread of its own, off
the SDK's event loop, so the loop keeps taking jobs; their items meet in one model scheduler
(`utils.asr.scheduler`), which puts items of different jobs into the same model call.
"""

import asyncio
import contextvars
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import runpod

import config
from utils import fitness
from utils.job import dirs
from utils.job import pipeline as job_pipeline
from utils.job.deadline import Deadline
from utils.logs import configure_logging

log = logging.getLogger("parakeet.handler")

# A cancelled job gets this long to stop its downloads and ffmpeg and remove its files before the
# cancellation is passed on (a model call in progress is not interrupted).
CANCEL_CLEANUP_SECONDS = 30.0


@functools.cache
def _job_threads(size: int) -> ThreadPoolExecutor:
    """The threads jobs run on, one per job the worker takes at once."""
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="job")


def report_progress(job: dict[str, Any], message: str) -> None:
    """Tells RunPod how a long job is going (visible in /status while the job runs).

    Args:
        job: The RunPod job.
        message: A short progress line.
    """
    if config.SEND_PROGRESS_UPDATES:
        runpod.serverless.progress_update(job, message)


def handler(job: dict[str, Any], deadline: Deadline | None = None) -> dict[str, Any]:
    """One job in, one contract-shaped result out, never an exception (blocking).

    Args:
        job: The RunPod job, with the client's payload under "input".
        deadline: The job's deadline and cancellation (default: `JOB_TIMEOUT_SECONDS` from now).

    Returns:
        The success or failure contract; `refresh_worker: true` after an unrecoverable GPU error.
    """
    deadline = deadline or Deadline(config.JOB_TIMEOUT_SECONDS)
    return job_pipeline.answer(job, lambda message: report_progress(job, message), deadline)


async def async_handler(job: dict[str, Any]) -> dict[str, Any]:
    """The RunPod handler: runs `handler` on a job thread, so that the SDK's loop stays free.

    Args:
        job: The RunPod job, with the client's payload under "input".

    Returns:
        What `handler` returns.

    Raises:
        asyncio.CancelledError: The job was cancelled; it stopped (or had `CANCEL_CLEANUP_SECONDS`
            to) before this is raised, and no other job is touched.
    """
    deadline = Deadline(config.JOB_TIMEOUT_SECONDS)
    context = contextvars.copy_context()
    work = asyncio.get_running_loop().run_in_executor(
        _job_threads(config.MAX_CONCURRENCY), context.run, handler, job, deadline
    )
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        log.info("job %s cancelled; stopping it", job.get("id"))
        deadline.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(work), CANCEL_CLEANUP_SECONDS)
        except TimeoutError:
            log.warning(
                "job %s did not stop within %.0f s of its cancellation", job.get("id"), CANCEL_CLEANUP_SECONDS
            )
        raise


def concurrency(current: int) -> int:
    """RunPod's concurrency modifier: how many jobs this worker takes at once.

    Args:
        current: The SDK's current concurrency.

    Returns:
        `config.MAX_CONCURRENCY`.
    """
    return config.MAX_CONCURRENCY


if __name__ == "__main__":
    configure_logging()
    fitness.register()
    dirs.remove_stale()
    dirs.use_process_directory()
    job_pipeline.preload()
    runpod.serverless.start({"handler": async_handler, "concurrency_modifier": concurrency})
