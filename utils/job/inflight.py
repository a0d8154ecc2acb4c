"""The worker-wide cap on decoded audio held at once (`MAX_INFLIGHT_AUDIO_SECONDS`).

A job reserves the probed length of all its items in one step before it decodes any, and releases it
when its transcription is over; while the cap is full, jobs wait (backpressure) instead of failing or
growing memory. Reserving a job's whole need at once means no two jobs can each hold part of the cap
while waiting for the rest. A job whose audio alone is over the cap is refused before decoding.

What a job reserves (`utils.job.preparation.planned_seconds`): a large file's length as ffprobe reads it
from the headers; a small file's length guessed from its size (it is decoded no further than that,
nor past the cap, and probed if its audio goes on); a length ffprobe cannot tell at the worst case.
Guesses and unknowns never ask for more than the whole cap, so only audio known to be too long gets a
job refused. A header that understates the length is caught after decoding: the reservation grows to
what was decoded rather than fail a job that is already in memory.
"""

import logging
import threading
from types import TracebackType
from typing import Self

import config
from utils.errors import AudioTooLongError, WorkerBusyError
from utils.job.deadline import Deadline

log = logging.getLogger(__name__)

# How often a waiting job looks at its own deadline (cancellation, timeout).
_WAIT_POLL_SECONDS = 0.5


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds."""
    return round(seconds * 1000)


class AudioBudget:
    """Seconds of decoded audio the running jobs hold, against the configured cap."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        # Whole milliseconds, so that a worker's thousands of reservations leave no rounding behind.
        self._in_use_ms = 0
        # The most ever held at once, in seconds (benchmarks and tests read it).
        self.peak = 0.0

    @property
    def in_use(self) -> float:
        """Seconds of audio held now."""
        return self._in_use_ms / 1000

    def _take(self, seconds: float) -> None:
        self._in_use_ms += _ms(seconds)
        self.peak = max(self.peak, self.in_use)

    def reserve(self, seconds: float, deadline: Deadline, wait: bool = True) -> None:
        """Waits until `seconds` fit under the cap, then holds them.

        Args:
            seconds: Decoded audio the job is about to hold.
            deadline: The job's deadline; waiting stops when it passes or the job is cancelled.
            wait: False refuses at once, instead of waiting, when the cap is full.

        Raises:
            AudioTooLongError: `seconds` alone are over the cap.
            WorkerBusyError: The cap is full and `wait` is False.
            WorkerError: The deadline's error, when it passed while waiting.
        """
        cap = config.MAX_INFLIGHT_AUDIO_SECONDS
        if seconds > cap:
            raise AudioTooLongError(
                f"the job's audio ({seconds:.0f} s) is more than this worker holds at once "
                f"({cap:g} s, MAX_INFLIGHT_AUDIO_SECONDS); send fewer or shorter items per job"
            )
        with self._condition:
            waited = False
            while self._in_use_ms + _ms(seconds) > _ms(cap):
                if not wait:
                    raise WorkerBusyError(
                        f"the worker holds {self.in_use:.0f} of {cap:g} s of audio "
                        f"(MAX_INFLIGHT_AUDIO_SECONDS), no room for {seconds:.0f} s more; retry shortly"
                    )
                if not waited:
                    log.info(
                        "waiting for room for %.0f s of audio (%.0f of %g s in use)",
                        seconds,
                        self.in_use,
                        cap,
                    )
                    waited = True
                deadline.check()
                self._condition.wait(min(_WAIT_POLL_SECONDS, max(deadline.remaining(), 0.01)))
            self._take(seconds)

    def adjust(self, held: float, actual: float) -> None:
        """Changes a reservation of `held` seconds to `actual` ones (what decoding really produced).

        Args:
            held: The seconds reserved.
            actual: The seconds now held; more than `held` is taken at once, even past the cap.
        """
        with self._condition:
            self._in_use_ms -= _ms(held)
            self._take(actual)
            self._condition.notify_all()

    def release(self, seconds: float) -> None:
        """Gives back a reservation.

        Args:
            seconds: The seconds reserved (after any `adjust`).
        """
        with self._condition:
            self._in_use_ms -= _ms(seconds)
            self._condition.notify_all()


class Reservation:
    """One job's hold on the budget, given back when the `with` block ends, whatever happens."""

    def __init__(self, budget: AudioBudget, deadline: Deadline, wait: bool = True) -> None:
        """Holds nothing yet.

        Args:
            budget: The worker's budget.
            deadline: The job's deadline, which bounds any wait.
            wait: False: refuse at once (`WorkerBusyError`) when the budget is full, instead of waiting.
        """
        self._budget = budget
        self._deadline = deadline
        self._wait = wait
        self.seconds = 0.0

    def acquire(self, seconds: float) -> None:
        """Makes the job's hold `seconds` (see `AudioBudget.reserve`).

        What the job held before is given back first, so that it never waits while holding part of
        the cap (two jobs doing that could wait for each other forever).

        Args:
            seconds: The audio the job is about to hold.
        """
        self._budget.release(self.seconds)
        self.seconds = 0.0
        self._budget.reserve(seconds, self._deadline, self._wait)
        self.seconds = seconds

    def settle(self, actual: float) -> None:
        """Makes the reservation what decoding produced.

        Args:
            actual: Decoded seconds the job holds.
        """
        self._budget.adjust(self.seconds, actual)
        self.seconds = actual

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._budget.release(self.seconds)
        self.seconds = 0.0


budget = AudioBudget()
