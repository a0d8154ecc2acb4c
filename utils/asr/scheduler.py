"""One scheduler owns the model: items of every running job queue for it and share model calls.

Jobs `submit` their items and wait on the futures they get back. A thread takes the queued items,
waits up to `BATCH_WAIT_MS` after the oldest one arrived for more (unless a full batch is already
there), and runs one model call at a time:

- The oldest queued item decides the call. Items of the same plan and timestamp need, from any job,
  join it, grouped by length and bounded like any batch (`utils.asr.batching`).
- A windowed item runs one window per call and then queues again behind the items that arrived
  meanwhile, so hours of audio never hold short clips back by more than one call.
- A file call takes at most `transcribe.call_limit_seconds` of audio, decided as the call is chosen:
  on a CPU `CPU_MAX_CALL_SECONDS` (so a deadline or a cancellation waits for one such call at most),
  while live sessions are open `LIVE_FILE_CALL_SECONDS` (so a live step does), the smaller when both
  hold. A longer item that has not started goes in windows of that length; batches are bounded by it.
- Running out of memory: a batch retries its items one by one; a lone item moves to the next plan
  (full → local → windows of `FALLBACK_WINDOW_SECONDS`). Any other failure of a batch also retries
  its items alone, so one job's bad item never fails another job's items.
- An item whose job was cancelled, or whose deadline passed, is dropped before its next call.
- Other work on the device (the diarizer) queues as a task (`run_task`) and takes its turn like an
  item, alone.
- Live steps (`run_live`: the live engine's batched streaming steps) are latency-bound: they go before
  the items and tasks, and cut short the wait for a batch to fill. Only when live steps come back to back
  does one waiting file call go between two of them (a busy live door slows file jobs, never stops them).
  A running call cannot be interrupted: live sessions count themselves open (`hold_live`) so that file
  calls are kept short (above) while they are.

Every call ends with the model in full attention (`transcribe.run_call`).
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

import config
from utils.asr import plans, transcribe
from utils.asr.batching import batches
from utils.asr.decoding import Boost
from utils.asr.plans import LOCAL, WINDOWED
from utils.asr.queue_items import Progress, Request, Task, WordSink, fail, report, send_words, settle, shorten
from utils.asr.records import Transcript
from utils.errors import GpuFailureError, GpuOutOfMemoryError
from utils.job.deadline import Deadline

__all__ = ["Progress", "Scheduler", "WordSink", "scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    """The model's queue and the thread that works it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: list[Request | Task] = []
        self._live: deque[Task] = deque()  # live steps: tasks with no deadline, run first
        # Whether the last call was a live step (the next one then lets a waiting file call go first).
        self._live_ran_last = False
        # Live sessions (and turns) open: file calls are kept short while there are any.
        self._live_holds = 0
        self._thread: threading.Thread | None = None

    def submit(
        self,
        audio: np.ndarray,
        kinds: frozenset[str],
        deadline: Deadline,
        progress: Progress,
        boost: Boost | None = None,
        window_seconds: float | None = None,
        on_words: WordSink | None = None,
        model_name: str | None = None,
    ) -> "Future[Transcript]":
        """Queues one item for the model.

        Args:
            audio: 16 kHz mono float32 samples.
            kinds: Timestamp kinds the item needs (and CONFIDENCE).
            deadline: The item's job deadline (also its cancellation).
            progress: Receives window progress messages (from the scheduler's thread).
            boost: The job's hotwords, or None.
            window_seconds: Cut audio longer than this into windows of this length, so that its words
                come window by window (a stream), whatever its plan would be; None: by its plan.
            on_words: Receives a windowed item's words as each window settles them (from the
                scheduler's thread).
            model_name: The served model to transcribe it with (None: the default).

        Returns:
            The future of the item's transcript; it raises what stopped the item.
        """
        seconds = audio.size / config.SAMPLE_RATE
        plan = transcribe.plan_of(seconds, model_name)
        if window_seconds is not None and seconds > window_seconds:
            plan = WINDOWED
        request = Request(
            audio,
            kinds,
            deadline,
            progress,
            Future(),
            plan,
            time.monotonic(),
            boost=boost,
            on_words=on_words,
            model=model_name,
        )
        if plan == WINDOWED:
            length = window_seconds or transcribe.fallback_window_seconds([])
            request.windows = transcribe.window_plan(audio.size, length)
        self._enqueue(request)
        return request.future

    def run_task(self, work: Callable[[], Any], deadline: Deadline) -> "Future[Any]":
        """Queues other work for the device (the diarizer), to run alone on the scheduler's thread.

        Args:
            work: What to run; its result or exception goes to the future.
            deadline: The job's deadline (also its cancellation): a task whose job stopped is dropped.

        Returns:
            The future of the work's result.
        """
        task = Task(work, deadline, Future(), time.monotonic())
        self._enqueue(task)
        return task.future

    def run_live(self, work: Callable[[], Any]) -> "Future[Any]":
        """Queues a live step, to run on the scheduler's thread before waiting items and tasks.

        Args:
            work: The step (no deadline: it decides what it holds when it starts); its result or
                exception goes to the future.

        Returns:
            The future of the step's result.
        """
        step = Task(work, None, Future(), time.monotonic())
        with self._condition:
            self._start_thread()
            self._live.append(step)
            self._condition.notify()
        return step.future

    def hold_live(self) -> None:
        """Counts a live session (or turn) open: until it is released, file calls are kept short."""
        with self._condition:
            self._live_holds += 1

    def release_live(self) -> None:
        """Counts a live session (or turn) closed (see `hold_live`)."""
        with self._condition:
            self._live_holds = max(0, self._live_holds - 1)

    def _enqueue(self, entry: "Request | Task") -> None:
        """Adds an item or task to the queue, starting the thread if it is not running."""
        with self._condition:
            self._start_thread()
            self._pending.append(entry)
            self._condition.notify()

    def _start_thread(self) -> None:
        """Starts the scheduler's thread unless it runs (the caller holds the condition)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="asr-scheduler", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        """The scheduler thread: forever, the next model call."""
        while True:
            call = self._next_call()
            try:
                self._run(call)
            except Exception as error:  # a bug here must not stop the thread that every job waits on
                log.exception("the scheduler failed a model call")
                for request in call:
                    fail(request, error)

    def _next_call(self) -> "list[Request | Task]":
        """Waits for work and picks the next call: a live step, or the items of the next model call
        (removing them from the queue)."""
        with self._condition:
            while True:
                while not self._pending and not self._live:
                    self._condition.wait()
                # After a live step, a waiting file call has its turn before the next live step.
                file_turn = self._live_ran_last and bool(self._pending)
                if self._live and not file_turn:
                    self._live_ran_last = True
                    return [self._live.popleft()]
                self._live_ran_last = False
                gather_until = min(r.ready_at for r in self._pending) + config.BATCH_WAIT_MS / 1000
                while (
                    (left := gather_until - time.monotonic()) > 0
                    and not self._full_batch_waiting()
                    and (file_turn or not self._live)
                ):
                    self._condition.wait(left)
                if self._live and not file_turn:
                    continue  # a live step arrived while the batch was filling: it goes first
                self._drop_finished()
                if self._pending:
                    call = self._choose()
                    for request in call:
                        self._pending.remove(request)
                    return call

    def _full_batch_waiting(self) -> bool:
        """Whether the oldest item already has a full batch to go with."""
        first = min(self._pending, key=lambda r: r.ready_at)
        return sum(r is first or r.joins(first) for r in self._pending) >= config.BATCH_SIZE

    def _drop_finished(self) -> None:
        """Fails the queued items whose job was cancelled or ran out of time, and forgets them."""
        for request in list(self._pending):
            if request.future.cancelled() or request.deadline.remaining() <= 0:
                self._pending.remove(request)
                fail(request, request.deadline.error())

    def _choose(self) -> "list[Request | Task]":
        """The oldest item and the items that share its call."""
        first = min(self._pending, key=lambda r: r.ready_at)
        if isinstance(first, Task):
            return [first]
        # The one place a file call's audio is bounded (on a CPU; while live sessions are open).
        limit = transcribe.call_limit_seconds(first.model, live_open=self._live_holds > 0)
        if limit is not None:
            shorten(first, limit)
        if first.plan == WINDOWED or first.alone:
            return [first]
        group = sorted((r for r in self._pending if r is first or r.joins(first)), key=lambda r: r.seconds)
        durations = [r.seconds for r in group]
        for batch in batches(list(range(len(group))), durations, limit):
            if group.index(first) in batch:
                return [group[i] for i in batch]
        return [first]

    def _requeue(self, request: Request, *, fresh: bool) -> None:
        """Puts an item back in the queue; `fresh` puts it behind the items that arrived meanwhile."""
        if fresh:
            request.ready_at = time.monotonic()
        with self._condition:
            self._pending.append(request)
            self._condition.notify()

    def _run(self, call: "list[Request] | list[Task]") -> None:
        """Runs one model call (or task, or live step) and settles or requeues each of its items."""
        first = call[0]
        if isinstance(first, Task):
            try:
                result = first.work()
            except Exception as error:  # noqa: BLE001  (the task's job gets it)
                fail(first, error)
            else:
                if not first.future.done():
                    first.future.set_result(result)
            return
        kinds = frozenset().union(*(r.kinds for r in call))
        try:
            if first.plan == WINDOWED:
                self._run_window(first)
                return
            hypotheses = transcribe.run_call(
                [r.audio for r in call], first.plan, kinds, first.boost, first.model
            )
        except Exception as error:  # noqa: BLE001  (every failure is sorted out per item below)
            self._failed_call(call, error)
            return
        for request, hypothesis in zip(call, hypotheses, strict=True):
            transcript = transcribe.transcript_of(hypothesis, request.plan, request.kinds)
            transcript.fallbacks = request.fallbacks
            transcript.batch = len(call)
            settle(request, transcript)

    def _run_window(self, request: Request) -> None:
        """Runs the item's next window; the last one stitches the transcript."""
        number = len(request.parts)
        window = request.windows[number]
        inner = transcribe.window_kinds(request.kinds)
        (hypothesis,) = transcribe.run_call(
            [request.audio[window.start : window.end]], LOCAL, inner, request.boost, request.model
        )
        offset = window.start / config.SAMPLE_RATE
        request.parts.append(transcribe.timestamps_of(hypothesis, inner, offset))
        report(request, f"window {number + 1}/{len(request.windows)} done")
        if request.on_words is not None:
            settled = transcribe.settled_words(request.parts, request.windows)
            send_words(request, settled[request.words_sent :])
            request.words_sent = len(settled)
        if len(request.parts) < len(request.windows):
            self._requeue(request, fresh=True)
            return
        transcript = transcribe.stitch(request.parts, request.windows, request.kinds)
        transcript.fallbacks = request.fallbacks
        settle(request, transcript)

    def _failed_call(self, call: list[Request], error: Exception) -> None:
        """Decides what a failed call means for each of its items."""
        seconds = sum(r.seconds for r in call)
        if transcribe.is_fatal_gpu_error(error):
            log.exception("unrecoverable GPU error")
            failure = GpuFailureError("the GPU failed while transcribing; the worker will be replaced")
            for request in call:
                fail(request, failure)
            return
        exhausted = transcribe.memory_exhausted(error, call[0].plan, seconds)
        if len(call) > 1:
            # Alone, an item of a larger batch may fit in the same mode, and a bad item fails only itself.
            if exhausted is None:
                log.warning("a batch of %d items failed (%s); retrying them one by one", len(call), error)
            for request in call:
                request.alone = True
                self._requeue(request, fresh=False)
            return
        request = call[0]
        if exhausted is None:
            log.error("a model call failed", exc_info=error)
            fail(request, error)
            return
        request.fallbacks.append(f"{request.plan}: out of {exhausted}")
        next_plan = plans.next_plan(request.plan)
        if next_plan is None:
            message = (
                "the audio did not fit the GPU memory even in windows; try a larger GPU"
                if exhausted == "GPU memory"
                else "the audio did not fit this worker's memory even in windows"
            )
            fail(request, GpuOutOfMemoryError(message))
            return
        request.plan = next_plan
        if next_plan == WINDOWED:
            window_seconds = transcribe.fallback_window_seconds(request.fallbacks)
            request.windows = transcribe.window_plan(request.audio.size, window_seconds)
        self._requeue(request, fresh=False)


scheduler = Scheduler()
