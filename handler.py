"""RunPod serverless entry point: start-up order, and the one place that maps errors to the contract.

Every job ends in the output contract: `{"success": true, "text", "duration", ...}` (or,
for a batch, `{"success": true, "results": [...]}`) or `{"success": false, "error", "error_type"}`.
The handler never raises: an exception escaping to the RunPod SDK would send its traceback and
hostname to the client.
"""

import logging
from typing import Any

import runpod

import config
from utils import fitness
from utils import job as job_pipeline
from utils.errors import GpuFailureError, InternalError, WorkerError
from utils.output import results

log = logging.getLogger("parakeet.handler")


def report_progress(job: dict[str, Any], message: str) -> None:
    """Tells RunPod how a long job is going (visible in /status while the job runs).

    Args:
        job: The RunPod job.
        message: A short progress line.
    """
    if config.SEND_PROGRESS_UPDATES:
        runpod.serverless.progress_update(job, message)


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The RunPod handler: one job in, one contract-shaped result out, never an exception.

    Args:
        job: The RunPod job, with the client's payload under "input".

    Returns:
        The success or failure contract; `refresh_worker: true` after an unrecoverable GPU error.
    """
    try:
        return job_pipeline.run_job(job, lambda message: report_progress(job, message))
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
