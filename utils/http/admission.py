"""Admission to a fixed number of slots: a short wait line in arrival order, and the expected wait.

The HTTP routes take a slot (one of `MAX_CONCURRENCY`) before they read a request's body, so a request
that waits costs a connection and nothing else: no disk, no memory. A request that finds every slot
taken waits in line for up to `ADMISSION_WAIT_SECONDS`, at most `ADMISSION_QUEUE_MAX` of them; one past
the line's bound, or past its wait, is refused with a `Retry-After` from the expected wait.

The expected wait comes from how long slots were held lately (an average over recent jobs), the slots
and the requests ahead. A door whose callers cannot wait (a live session) keeps a line of its own with
no waiting: `Line(cap, wait_seconds=0, queue_max=0)` refuses at once with the same estimate.

A line belongs to one event loop (the server's); a slot may be released from any thread.
"""

import asyncio
import contextlib
import math
import threading
import time
from collections import deque

from utils.errors import JobCancelledError, WorkerBusyError

# Weight of the latest slot's hold time in the running average.
_SMOOTHING = 0.3


class Slot:
    """One slot taken from a line; `release` gives it back (once, from any thread)."""

    def __init__(self, line: "Line") -> None:
        self._line = line
        self._taken = time.monotonic()
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        """Gives the slot back to its line (later calls do nothing)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._line.give_back(time.monotonic() - self._taken)


class Line:
    """A fixed number of slots and the requests waiting for one, served in arrival order."""

    def __init__(self, slots: int, wait_seconds: float, queue_max: int, typical_hold_seconds: float) -> None:
        """Makes an empty line.

        Args:
            slots: How many holders at once.
            wait_seconds: Longest wait in line (0: a full line refuses at once).
            queue_max: Most requests waiting (0: none wait).
            typical_hold_seconds: How long a slot is taken to be held until one has been timed.
        """
        self.slots = slots
        self.wait_seconds = wait_seconds
        self.queue_max = queue_max
        self._held = 0
        # Each waiter with its arrival number; `_front` is the number of the last one handed a slot, so
        # that a waiter's place counts those ahead of it who gave up too (they come back before it).
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._arrivals = 0
        self._front = 0
        self._hold_seconds = typical_hold_seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def held(self) -> int:
        """Slots taken now."""
        return self._held

    @property
    def waiting(self) -> int:
        """Requests waiting in line now."""
        return sum(not future.done() for _, future in self._waiting)

    def expected_wait(self, ahead: int | None = None) -> float:
        """The seconds a request that joins the line now can expect to wait for a slot.

        Args:
            ahead: Requests ahead of it (default: those waiting now).

        Returns:
            The estimate: the rounds of slot hand-overs it must wait, each as long as a recent hold.
        """
        ahead = self.waiting if ahead is None else ahead
        if self._held < self.slots and ahead == 0:
            return 0.0
        return math.ceil((ahead + 1) / self.slots) * self._hold_seconds

    def retry_after(self) -> int:
        """The `Retry-After` to send a refused request: the expected wait, in whole seconds (at least 1)."""
        return max(1, math.ceil(self.expected_wait()))

    def _refusal(self, why: str) -> WorkerBusyError:
        return WorkerBusyError(why, retry_after=self.retry_after())

    async def enter(self, abandoned: "asyncio.Future[None] | None" = None) -> Slot:
        """Takes a slot, waiting in line for one when all are taken.

        Args:
            abandoned: Done once the request is given up (its client went away): it then leaves the
                line at once, keeping no place in it.

        Returns:
            The slot; release it when the work ends.

        Raises:
            WorkerBusyError: The line is full, or no slot came within its wait (with `retry_after`).
            JobCancelledError: `abandoned` finished while the request waited.
        """
        self._loop = asyncio.get_running_loop()
        if self._held < self.slots and not self.waiting:
            self._held += 1
            return Slot(self)
        if self.wait_seconds <= 0 or self.waiting >= self.queue_max:
            raise self._refusal(
                f"the worker is running {self.slots} jobs (MAX_CONCURRENCY) and {self.waiting} requests "
                "wait for one; retry later"
            )
        turn: asyncio.Future[None] = self._loop.create_future()
        self._arrivals += 1
        number = self._arrivals
        self._waiting.append((number, turn))
        ahead = 0
        watched = {turn} if abandoned is None else {turn, abandoned}
        try:
            await asyncio.wait(watched, timeout=self.wait_seconds, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._hand_over(None)  # the slot came just as the request went away: pass it on
            raise
        finally:
            if not turn.done():
                # Those that came before it and have no slot yet: waiting still, or gone to retry first.
                ahead = number - self._front - 1
                turn.cancel()  # gave up (timeout, or the request went away): leave the line
            self._forget(number, turn)
        if turn.cancelled() and abandoned is not None and abandoned.done():
            raise JobCancelledError("the client went away while its request waited for a slot")
        if turn.cancelled():
            # Its retry is due when its place in line would have come: those ahead of it, not behind
            # (so that the waiters refused together are not all told the same time).
            raise WorkerBusyError(
                f"the worker stayed full for {self.wait_seconds:g} s (ADMISSION_WAIT_SECONDS); retry later",
                retry_after=max(1, math.ceil(self.expected_wait(ahead))),
            )
        return Slot(self)

    def _forget(self, number: int, turn: "asyncio.Future[None]") -> None:
        with contextlib.suppress(ValueError):  # already handed its turn
            self._waiting.remove((number, turn))

    def give_back(self, held_seconds: float) -> None:
        """Returns a slot (called by `Slot.release`, from any thread).

        Args:
            held_seconds: How long it was held (feeds the expected wait).
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            self._hand_over(held_seconds)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._hand_over(held_seconds)
        else:
            loop.call_soon_threadsafe(self._hand_over, held_seconds)

    def _hand_over(self, held_seconds: float | None) -> None:
        """On the line's loop: passes the slot to the first request still waiting, or frees it."""
        if held_seconds is not None:
            self._hold_seconds += _SMOOTHING * (held_seconds - self._hold_seconds)
        while self._waiting:
            number, turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot goes straight to it: `held` does not change
                self._front = number
                return
        self._held -= 1
