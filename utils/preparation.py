"""A job's audio items, from their sources to 16 kHz mono samples in memory, in two steps.

`fetch_items` saves each item into a directory of its own inside the job's temporary directory and
reads its length from the headers; `decode_items` turns the files into samples. Between the two the
job reserves room for its audio (`utils.inflight`). A batch runs each step concurrently, and one
item's failure becomes that item's error; a single-file job fails as a whole.
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    """One item on its way: its file and probed length, then its samples, or the error that stopped it."""

    path: Path | None = None
    # The length ffprobe read from the headers (None: it could not tell).
    probed_seconds: float | None = None
    samples: np.ndarray | None = None
    # The decoded length; kept when the samples are dropped after transcription.
    seconds: float = 0.0
    error: WorkerError | None = None
    fetch_seconds: float = 0.0
    convert_seconds: float = 0.0


def planned_seconds(items: list[PreparedItem]) -> float:
    """What a job's fetched items may decode to, for its reservation.

    Items ffprobe could not measure count at the worst case, but together they never ask for more
    than the whole cap: such a job is not refused for what it might hold, only for what it does.

    Args:
        items: From `fetch_items`.

    Returns:
        Seconds of audio to reserve.
    """
    fetched = [item for item in items if item.error is None and item.path is not None]
    known = sum(
        min(item.probed_seconds, config.MAX_AUDIO_SECONDS)
        for item in fetched
        if item.probed_seconds is not None
    )
    if all(item.probed_seconds is not None for item in fetched):
        return known
    return max(known, config.MAX_INFLIGHT_AUDIO_SECONDS)


def fetch_item(item: AudioItem, item_dir: Path, deadline: Deadline) -> PreparedItem:
    """Fetches one item's audio into `item_dir` and reads its length from the headers.

    Args:
        item: The validated item.
        item_dir: A directory to create inside the job's temporary directory.
        deadline: The job's deadline; the download gets no more than its time left.

    Returns:
        The item with its file, probed length and fetch time.

    Raises:
        WorkerError: The audio could not be fetched, or the job ran out of time.
    """
    item_dir.mkdir()
    with deadline.applied():
        deadline.check()  # a batch item may start late
        started = time.perf_counter()
        path = sources.fetch(item.source_field, item.source, item_dir)
        probed = audio.probe_seconds(path)
    return PreparedItem(path=path, probed_seconds=probed, fetch_seconds=time.perf_counter() - started)


def decode_item(prepared: PreparedItem, deadline: Deadline) -> None:
    """Decodes a fetched item in place; its file is removed once the samples are in memory.

    Args:
        prepared: An item from `fetch_item`.
        deadline: The job's deadline; ffmpeg gets no more than its time left.

    Raises:
        WorkerError: The audio could not be decoded, or the job ran out of time.
    """
    assert prepared.path is not None
    started = time.perf_counter()
    with deadline.applied():
        deadline.check()
        prepared.samples = audio.decode(prepared.path)
    prepared.path.unlink()  # free the disk early
    prepared.path = None
    prepared.seconds = prepared.samples.size / config.SAMPLE_RATE
    prepared.convert_seconds = time.perf_counter() - started


def _each(
    request: JobRequest, step: Callable[[int], None], failed: Callable[[int, WorkerError], None]
) -> None:
    """Runs `step` for every item; a batch runs them concurrently and keeps each failure to its item."""
    indices = range(len(request.items))
    if not request.is_batch:
        step(0)
        return

    def guarded(index: int) -> None:
        try:
            step(index)
        except WorkerError as error:
            failed(index, error)
        except Exception:
            log.exception("batch item %d failed with an unexpected error", index)
            failed(index, InternalError())

    with ThreadPoolExecutor(max_workers=config.FETCH_CONCURRENCY) as pool:
        list(pool.map(guarded, indices))


def fetch_items(request: JobRequest, job_dir: Path, deadline: Deadline) -> list[PreparedItem]:
    """Fetches and probes every item of a job, concurrently for a batch.

    Args:
        request: The validated job.
        job_dir: The job's temporary directory (removed by the caller).
        deadline: The job's deadline.

    Returns:
        One PreparedItem per item, in input order (a batch item that failed carries its error).

    Raises:
        WorkerError: A single-file job's audio could not be fetched.
    """
    items = [PreparedItem() for _ in request.items]

    def fetch(index: int) -> None:
        items[index] = fetch_item(request.items[index], job_dir / f"item-{index}", deadline)

    _each(request, fetch, lambda index, error: setattr(items[index], "error", error))
    return items


def decode_items(request: JobRequest, items: list[PreparedItem], deadline: Deadline) -> None:
    """Decodes the fetched items in place, concurrently for a batch.

    Args:
        request: The validated job.
        items: From `fetch_items`; those with an error are skipped.
        deadline: The job's deadline.

    Raises:
        WorkerError: A single-file job's audio could not be decoded.
    """

    def decode(index: int) -> None:
        if items[index].error is None:
            decode_item(items[index], deadline)

    def failed(index: int, error: WorkerError) -> None:
        items[index].error = error
        if items[index].path is not None:
            items[index].path.unlink(missing_ok=True)

    _each(request, decode, failed)
