"""A job's audio items, from their sources to 16 kHz mono samples in memory, in two steps.

`fetch_items` saves each item into a directory of its own inside the job's temporary directory and
reads its stream's headers (a large file's length is taken from them, a small one's guessed from its
size); `decode_items`
reserves room for the job's audio (`utils.job.inflight`) and turns the files into samples. A batch runs
each step concurrently, and one item's failure becomes that item's error; a single-file job fails as
a whole.
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import config
from utils import sources
from utils.audio import decoding
from utils.contract.validation import AudioItem, JobRequest
from utils.errors import AudioTooLongError, InternalError, WorkerError
from utils.job.deadline import Deadline
from utils.job.inflight import Reservation

log = logging.getLogger(__name__)


@dataclass
class PreparedItem:
    """One item on its way: its file and probed length, then its samples, or the error that stopped it."""

    path: Path | None = None
    # A length guessed from the file size, decoded up to before trusting the headers (None: trust them).
    guessed_seconds: float | None = None
    # The length ffprobe read from the headers (None: not used yet, or it could not tell).
    probed_seconds: float | None = None
    # The stream's layout from its headers: shapes the decode; its start offset shifts the times.
    stream: decoding.StreamInfo = field(default_factory=decoding.StreamInfo)
    # False for a small file, whose headers are read with its decode, in one pass.
    stream_read: bool = True
    # Whether its channels are kept apart (`channels: "separate"`): samples then have one row each.
    separate: bool = False
    samples: np.ndarray | None = None
    # The decoded length; kept when the samples are dropped after transcription.
    seconds: float = 0.0
    error: WorkerError | None = None
    fetch_seconds: float = 0.0
    convert_seconds: float = 0.0

    @property
    def copies(self) -> int:
        """How many channels' worth of audio it holds in memory (each separate channel counts)."""
        return (self.stream.channels or 1) if self.separate else 1

    @property
    def held_seconds(self) -> float:
        """Seconds of decoded samples it holds, every channel counted."""
        return 0.0 if self.samples is None else self.samples.size / config.SAMPLE_RATE


def _lengths(items: list[PreparedItem]) -> tuple[float, float]:
    """The fetched items' audio: certain (probed) seconds, and uncertain (guessed; unknown at worst)."""
    certain = uncertain = 0.0
    for item in items:
        if item.error is not None or item.path is None:
            continue
        if item.guessed_seconds is not None:
            uncertain += item.guessed_seconds * item.copies
        elif item.probed_seconds is not None:
            certain += min(item.probed_seconds, config.MAX_AUDIO_SECONDS) * item.copies
        else:
            uncertain += config.MAX_AUDIO_SECONDS * item.copies
    return certain, uncertain


def planned_seconds(items: list[PreparedItem]) -> float:
    """What a job's fetched items may decode to, for its reservation.

    Probed lengths are certain; guessed ones (and lengths ffprobe could not tell, at the worst case)
    are not, so together they never ask for more than the whole cap: a job is refused only for the
    audio it is known to hold, never for a guess.

    Args:
        items: From `fetch_items`.

    Returns:
        Seconds of audio to reserve.
    """
    certain, uncertain = _lengths(items)
    cap = config.MAX_INFLIGHT_AUDIO_SECONDS
    return certain if certain > cap else min(certain + uncertain, cap)


def _check_job_length(seconds: float) -> None:
    """Refuses a job whose audio (known so far) is over `MAX_JOB_AUDIO_SECONDS`."""
    if seconds > config.MAX_JOB_AUDIO_SECONDS:
        raise AudioTooLongError(
            f"the job's audio is {seconds:.0f} s in all; the limit per job is "
            f"{config.MAX_JOB_AUDIO_SECONDS:g} s (MAX_JOB_AUDIO_SECONDS)"
        )


def guess_seconds(size_bytes: int) -> float | None:
    """The length a file of this size is decoded up to before its headers are trusted, or None.

    Args:
        size_bytes: The file's size.

    Returns:
        Seconds, or None when the file is large enough for its headers' length to be used instead.
    """
    guess = max(size_bytes / config.DECODE_GUESS_BYTES_PER_SECOND, config.DECODE_GUESS_MIN_SECONDS)
    return guess if guess <= config.DECODE_GUESS_MAX_SECONDS else None


def fetch_item(item: AudioItem, item_dir: Path, deadline: Deadline, separate: bool = False) -> PreparedItem:
    """Fetches one item's audio into `item_dir`; a large file's length is read from its headers.

    Args:
        item: The validated item.
        item_dir: A directory to create inside the job's temporary directory.
        deadline: The job's deadline; the download gets no more than its time left.
        separate: Its channels are to be kept apart (they are counted, and bounded, from here on).

    Returns:
        The item with its file, guessed or probed length and fetch time.

    Raises:
        WorkerError: The audio could not be fetched, or the job ran out of time.
    """
    item_dir.mkdir()
    with deadline.applied():
        deadline.check()  # a batch item may start late
        started = time.perf_counter()
        path = sources.fetch(item.source_field, item.source, item_dir)
        guessed = guess_seconds(path.stat().st_size)
        # A small file's headers are not trusted for its reservation (it is decoded up to its guess),
        # so they are read with its decode; channels kept apart must be counted before.
        read_now = guessed is None or separate
        stream = decoding.probe(path) if read_now else decoding.StreamInfo()
        decoding.check_headers(stream, path.stat().st_size)  # before its length is reserved
        if separate:
            stream.check_separable()
    return PreparedItem(
        path=path,
        guessed_seconds=guessed,
        probed_seconds=stream.seconds if guessed is None else None,
        stream=stream,
        stream_read=read_now,
        separate=separate,
        fetch_seconds=time.perf_counter() - started,
    )


def decode_item(prepared: PreparedItem, deadline: Deadline) -> None:
    """Decodes a fetched item in place (up to its guessed length, if it has one).

    Its file is removed once all its samples are in memory. An item whose audio goes on past its
    guess keeps its file, loses its guess, and is reserved by its headers' length, for `decode_items`
    to decode it again under a reservation that fits.

    Args:
        prepared: An item from `fetch_item`.
        deadline: The job's deadline; ffmpeg gets no more than its time left.

    Raises:
        WorkerError: The audio could not be decoded, or the job ran out of time.
    """
    assert prepared.path is not None
    started = time.perf_counter()
    # A guessed item decodes at most its guess, and never much more than the whole cap.
    guess = prepared.guessed_seconds
    limit = None if guess is None else min(guess, config.MAX_INFLIGHT_AUDIO_SECONDS, config.MAX_AUDIO_SECONDS)
    with deadline.applied():
        deadline.check()
        if prepared.stream_read:
            samples = decoding.decode(prepared.path, limit, prepared.stream, prepared.separate)
        else:
            assert limit is not None  # an unread stream belongs to a small, guessed file
            samples, prepared.stream = decoding.decode_small(prepared.path, limit)
            prepared.stream_read = True
        seconds = samples.shape[-1] / config.SAMPLE_RATE
        prepared.convert_seconds += time.perf_counter() - started
        if limit is not None and seconds > limit:
            log.info("the audio goes on past its guessed %.0f s; reserving by its headers", guess)
            prepared.guessed_seconds = None
            prepared.probed_seconds = prepared.stream.seconds
            return
    prepared.samples = samples
    prepared.seconds = seconds
    prepared.path.unlink()  # free the disk early
    prepared.path = None


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
        separate = request.channels == "separate"
        items[index] = fetch_item(request.items[index], job_dir / f"item-{index}", deadline, separate)

    _each(request, fetch, lambda index, error: setattr(items[index], "error", error))
    return items


def decode_items(
    request: JobRequest, items: list[PreparedItem], deadline: Deadline, reservation: Reservation
) -> None:
    """Decodes the fetched items in place under the job's reservation, concurrently for a batch.

    Args:
        request: The validated job.
        items: From `fetch_items`; those with an error are skipped.
        deadline: The job's deadline.
        reservation: The job's hold on the audio budget; it ends as what was decoded.

    Raises:
        WorkerError: A single-file job's audio could not be decoded.
    """

    def decode(index: int) -> None:
        if items[index].error is None and items[index].path is not None:
            decode_item(items[index], deadline)

    def failed(index: int, error: WorkerError) -> None:
        items[index].error = error
        if items[index].path is not None:
            items[index].path.unlink(missing_ok=True)
            items[index].path = None

    _check_job_length(_lengths(items)[0])
    reservation.acquire(planned_seconds(items))
    _each(request, decode, failed)
    if any(item.error is None and item.path is not None for item in items):
        # Some audio went on past its guess: reserve again for what it really is, then decode it all.
        decoded = sum(item.held_seconds for item in items)
        _check_job_length(decoded + _lengths(items)[0])
        reservation.acquire(decoded + planned_seconds(items))
        _each(request, decode, failed)
    decoded = sum(item.held_seconds for item in items)
    reservation.settle(decoded)
    _check_job_length(decoded)
