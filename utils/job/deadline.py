"""The per-job deadline: a whole job ends within `config.JOB_TIMEOUT_SECONDS`.

The handler starts one `Deadline` per job, checks it at stage boundaries, and makes it current (a
context variable) while an item is fetched and converted. The code that waits on something outside
the process (a download, ffmpeg) bounds its own timeout with `cap_to_job`, so it needs no deadline
argument and behaves as before outside a job. A timeout or failure that happens once the job's time
is up is reported as the job's timeout, not as the stage's own (whose limit it did not reach).

The deadline is also the job's cancellation: `cancel` (RunPod's /cancel, or its execution timeout)
ends the time at once, kills the job's ffmpeg through `on_cancel`, and the scheduler drops the job's
queued items. A model call in progress cannot be interrupted: the scheduler stops between calls
(batches, windows) at the latest.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from utils.errors import JobCancelledError, JobTimeoutError, WorkerError

_current: ContextVar["Deadline | None"] = ContextVar("job_deadline", default=None)


class Deadline:
    """The moment by which one job must be done."""

    def __init__(self, seconds: float) -> None:
        """Starts the clock.

        Args:
            seconds: The job's whole time budget (`config.JOB_TIMEOUT_SECONDS`).
        """
        self.seconds = seconds
        self._expires = time.monotonic() + seconds
        self._cancelled = False
        self._lock = threading.Lock()
        self._on_cancel: list[Callable[[], None]] = []

    def remaining(self) -> float:
        """Returns the seconds left (zero or negative once the time is up or the job is cancelled)."""
        return 0.0 if self._cancelled else self._expires - time.monotonic()

    def error(self) -> WorkerError:
        """Returns the error that reports this deadline as passed (or the job as cancelled)."""
        if self._cancelled:
            return JobCancelledError("the job was cancelled")
        return JobTimeoutError(f"the job did not finish within {self.seconds:g} s")

    def cancel(self) -> None:
        """Ends the job's time now and stops what registered with `on_cancel` (its ffmpeg)."""
        with self._lock:
            self._cancelled = True
            callbacks = list(self._on_cancel)
        for callback in callbacks:
            callback()

    @contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Calls `callback` if the job is cancelled while the block runs (at once if it already was)."""
        with self._lock:
            self._on_cancel.append(callback)
            cancelled = self._cancelled
        if cancelled:
            callback()
        try:
            yield
        finally:
            with self._lock:
                self._on_cancel.remove(callback)

    def check(self) -> None:
        """Raises when the job's time is up (a stage boundary).

        Raises:
            JobTimeoutError: The deadline has passed.
        """
        if self.remaining() <= 0:
            raise self.error()

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Makes this the current job's deadline for `cap_to_job` inside the block (this thread only).

        Raises:
            JobTimeoutError: A worker error raised inside the block after the deadline passed: the
                stage was cut short by the job's time limit, so that is the error the client sees.
        """
        token = _current.set(self)
        try:
            yield
        except (JobTimeoutError, JobCancelledError):
            raise
        except WorkerError as error:
            if self.remaining() <= 0:
                raise self.error() from error
            raise
        finally:
            _current.reset(token)


def current() -> "Deadline | None":
    """Returns the deadline made current by `Deadline.applied` in this thread, if any."""
    return _current.get()


def cap_to_job(seconds: float) -> float:
    """Returns `seconds`, or the current job's time left when that is shorter (never below zero).

    Args:
        seconds: A stage's own timeout, e.g. `config.DOWNLOAD_TIMEOUT_SECONDS`.

    Returns:
        The timeout to use; `seconds` unchanged outside a job's `Deadline.applied` block.
    """
    deadline = _current.get()
    if deadline is None:
        return seconds
    return max(0.0, min(seconds, deadline.remaining()))
