"""The per-job deadline: a whole job ends within `config.JOB_TIMEOUT_SECONDS`.

The handler starts one `Deadline` per job, checks it at stage boundaries, and makes it current (a
context variable) while an item is fetched and converted. The code that waits on something outside
the process (a download, ffmpeg) bounds its own timeout with `cap_to_job`, so it needs no deadline
argument and behaves as before outside a job. A timeout or failure that happens once the job's time
is up is reported as the job's timeout, not as the stage's own (whose limit it did not reach).

A model call in progress cannot be interrupted: the transcriber stops between calls (batches,
windows) at the latest.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from utils.errors import JobTimeoutError, WorkerError

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

    def remaining(self) -> float:
        """Returns the seconds left (zero or negative once the time is up)."""
        return self._expires - time.monotonic()

    def error(self) -> JobTimeoutError:
        """Returns the error that reports this deadline as passed."""
        return JobTimeoutError(f"the job did not finish within {self.seconds:g} s")

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
        except JobTimeoutError:
            raise
        except WorkerError as error:
            if self.remaining() <= 0:
                raise self.error() from error
            raise
        finally:
            _current.reset(token)


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
