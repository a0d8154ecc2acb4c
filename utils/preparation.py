"""A job's audio items, from their sources to 16 kHz mono samples in memory.

Each item gets a directory of its own inside the job's temporary directory. A batch fetches and
converts its items concurrently, and one item's failure becomes that item's error; a single-file job
fails as a whole.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

import config
from utils import audio, sources
from utils.deadline import Deadline
from utils.errors import InternalError, WorkerError
from utils.validation import AudioItem, JobRequest

log = logging.getLogger(__name__)


@dataclass
class PreparedItem:
    """One item after fetching and converting: its samples, or the error that stopped it."""

    samples: np.ndarray | None = None
    error: WorkerError | None = None
    fetch_seconds: float = 0.0
    convert_seconds: float = 0.0


def prepare_item(item: AudioItem, item_dir: Path, deadline: Deadline) -> PreparedItem:
    """Fetches one item's audio into `item_dir` and decodes it.

    Args:
        item: The validated item.
        item_dir: A directory to create inside the job's temporary directory.
        deadline: The job's deadline; the download and ffmpeg get no more than its time left.

    Returns:
        The decoded item with its stage timings.

    Raises:
        WorkerError: The audio could not be fetched or decoded, or the job ran out of time.
    """
    item_dir.mkdir()
    with deadline.applied():
        deadline.check()  # a batch item may start late
        started = time.perf_counter()
        path = sources.fetch(item.source_field, item.source, item_dir)
        deadline.check()
        fetched = time.perf_counter()
        samples = audio.decode(path)
    path.unlink()  # the samples are in memory; free the disk early
    return PreparedItem(samples, None, fetched - started, time.perf_counter() - fetched)


def _prepare_batch_item(item: AudioItem, item_dir: Path, deadline: Deadline) -> PreparedItem:
    """Like `prepare_item`, but a failure becomes the item's error so other items go on."""
    try:
        return prepare_item(item, item_dir, deadline)
    except WorkerError as error:
        return PreparedItem(error=error)
    except Exception:
        log.exception("batch item %s failed with an unexpected error", item_dir.name)
        return PreparedItem(error=InternalError())


def prepare_items(request: JobRequest, job_dir: Path, deadline: Deadline) -> list[PreparedItem]:
    """Fetches and decodes every item of a job, concurrently for a batch.

    Args:
        request: The validated job.
        job_dir: The job's temporary directory (removed by the caller).
        deadline: The job's deadline.

    Returns:
        One PreparedItem per item, in input order.

    Raises:
        WorkerError: A single-file job's audio could not be prepared.
    """
    item_dirs = [job_dir / f"item-{index}" for index in range(len(request.items))]
    if not request.is_batch:
        return [prepare_item(request.items[0], item_dirs[0], deadline)]
    with ThreadPoolExecutor(max_workers=config.FETCH_CONCURRENCY) as pool:
        return list(pool.map(_prepare_batch_item, request.items, item_dirs, repeat(deadline)))
