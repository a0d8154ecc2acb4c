"""One scheduler owns the model: items of every running job queue for it and share model calls.

Jobs `submit` their items and wait on the futures they get back. A thread takes the queued items,
waits up to `BATCH_WAIT_MS` after the oldest one arrived for more (unless a full batch is already
there), and runs one model call at a time:

- The oldest queued item decides the call. Items of the same plan and timestamp need, from any job,
  join it, grouped by length and bounded like any batch (`utils.asr.batching`).
- A windowed item runs one window per call and then queues again behind the items that arrived
  meanwhile, so hours of audio never hold short clips back by more than one call.
- On a CPU no call takes more than `CPU_MAX_CALL_SECONDS` of audio (longer items go in windows of that
  length, batches are bounded by it), so a deadline or a cancellation waits for one such call at most.
- Running out of memory: a batch retries its items one by one; a lone item moves to the next plan
  (full → local → windows of `FALLBACK_WINDOW_SECONDS`). Any other failure of a batch also retries
  its items alone, so one job's bad item never fails another job's items.
- An item whose job was cancelled, or whose deadline passed, is dropped before its next call.
- Other work on the device (the diarizer) queues as a task (`run_task`) and takes its turn like an
  item, alone.

Every call ends with the model in full attention (`transcribe.run_call`).
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import config
from utils.asr import plans, transcribe
from utils.asr.batching import batches
from utils.asr.decoding import Boost
from utils.asr.plans import LOCAL, WINDOWED
from utils.asr.records import CONFIDENCE, LOGPROBS, Timestamps, Transcript, Word
from utils.asr.windows import Window
from utils.errors import GpuFailureError, GpuOutOfMemoryError, UnreliableTranscriptError
from utils.job.deadline import Deadline

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
# Receives the words of a windowed item as they are settled, window by window (a stream's deltas).
WordSink = Callable[[list[Word]], None]


@dataclass(eq=False)
class _Request:
    """One item waiting for the model, and where it stands."""

    audio: np.ndarray
    kinds: frozenset[str]
    deadline: Deadline
    progress: Progress
    future: "Future[Transcript]"
    plan: str
    ready_at: float
    fallbacks: list[str] = field(default_factory=list)
    # After a failed batch call the item runs alone, so that its failure is its own.
    alone: bool = False
    windows: list[Window] = field(default_factory=list)
    parts: list[Timestamps] = field(default_factory=list)
    # The job's hotwords: items share a call only with items boosted the same way.
    boost: Boost | None = None
    on_words: WordSink | None = None
    words_sent: int = 0
    # The served model it goes to (None: the default); items of different models never share a call.
    model: str | None = None

    @property
    def seconds(self) -> float:
        """The item's audio length."""
        return self.audio.size / config.SAMPLE_RATE

    def joins(self, other: "_Request") -> bool:
        """Whether this item may share a model call with `other`."""
        return (
            self.plan == other.plan != WINDOWED
            and self.model == other.model
            and bool(self.kinds) == bool(other.kinds)
            # Confidence and log-probabilities change the decoder for the whole call.
            and (CONFIDENCE in self.kinds) == (CONFIDENCE in other.kinds)
            and (LOGPROBS in self.kinds) == (LOGPROBS in other.kinds)
            and self.boost == other.boost
            and not self.alone
            and not other.alone
        )


@dataclass(eq=False)
class _Task:
    """Other work for the device, run alone on the scheduler's thread in its turn."""

    work: Callable[[], Any]
    deadline: Deadline
    future: "Future[Any]"
    ready_at: float
    seconds: float = 0.0
    alone: bool = True
    plan: str = "task"

    def joins(self, other: Any) -> bool:
        """A task shares its turn with nothing."""
        return False


class Scheduler:
    """The model's queue and the thread that works it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: list[_Request | _Task] = []
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
        # On a CPU, audio longer than one call may take goes in windows that each take a bounded time.
        limit = transcribe.call_limit_seconds(model_name)
        if window_seconds is not None and seconds > window_seconds:
            plan = WINDOWED
        elif limit is not None and seconds > limit:
            plan = WINDOWED  # in windows of its plan's length, at most the limit (below)
        request = _Request(
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
            length = length if limit is None else min(length, limit)
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
        task = _Task(work, deadline, Future(), time.monotonic())
        self._enqueue(task)
        return task.future

    def _enqueue(self, entry: "_Request | _Task") -> None:
        """Adds an item or task to the queue, starting the thread if it is not running."""
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="asr-scheduler", daemon=True)
                self._thread.start()
            self._pending.append(entry)
            self._condition.notify()

    def _work(self) -> None:
        """The scheduler thread: forever, the next model call."""
        while True:
            call = self._next_call()
            try:
                self._run(call)
            except Exception as error:  # a bug here must not stop the thread that every job waits on
                log.exception("the scheduler failed a model call")
                for request in call:
                    _fail(request, error)

    def _next_call(self) -> "list[_Request | _Task]":
        """Waits for work and picks the items of the next model call (removing them from the queue)."""
        with self._condition:
            while True:
                while not self._pending:
                    self._condition.wait()
                gather_until = min(r.ready_at for r in self._pending) + config.BATCH_WAIT_MS / 1000
                while (left := gather_until - time.monotonic()) > 0 and not self._full_batch_waiting():
                    self._condition.wait(left)
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
                _fail(request, request.deadline.error())

    def _choose(self) -> "list[_Request | _Task]":
        """The oldest item and the items that share its call."""
        first = min(self._pending, key=lambda r: r.ready_at)
        if first.plan == WINDOWED or first.alone:
            return [first]
        group = sorted((r for r in self._pending if r is first or r.joins(first)), key=lambda r: r.seconds)
        durations = [r.seconds for r in group]
        limit = transcribe.call_limit_seconds(first.model)
        for batch in batches(list(range(len(group))), durations, limit):
            if group.index(first) in batch:
                return [group[i] for i in batch]
        return [first]

    def _requeue(self, request: _Request, *, fresh: bool) -> None:
        """Puts an item back in the queue; `fresh` puts it behind the items that arrived meanwhile."""
        if fresh:
            request.ready_at = time.monotonic()
        with self._condition:
            self._pending.append(request)
            self._condition.notify()

    def _run(self, call: "list[_Request] | list[_Task]") -> None:
        """Runs one model call (or task) and settles or requeues each of its items."""
        first = call[0]
        if isinstance(first, _Task):
            try:
                result = first.work()
            except Exception as error:  # noqa: BLE001  (the task's job gets it)
                _fail(first, error)
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
            _settle(request, transcript)

    def _run_window(self, request: _Request) -> None:
        """Runs the item's next window; the last one stitches the transcript."""
        number = len(request.parts)
        window = request.windows[number]
        inner = transcribe.window_kinds(request.kinds)
        (hypothesis,) = transcribe.run_call(
            [request.audio[window.start : window.end]], LOCAL, inner, request.boost, request.model
        )
        offset = window.start / config.SAMPLE_RATE
        request.parts.append(transcribe.timestamps_of(hypothesis, inner, offset))
        _report(request, f"window {number + 1}/{len(request.windows)} done")
        if request.on_words is not None:
            settled = transcribe.settled_words(request.parts, request.windows)
            _send_words(request, settled[request.words_sent :])
            request.words_sent = len(settled)
        if len(request.parts) < len(request.windows):
            self._requeue(request, fresh=True)
            return
        transcript = transcribe.stitch(request.parts, request.windows, request.kinds)
        transcript.fallbacks = request.fallbacks
        _settle(request, transcript)

    def _failed_call(self, call: list[_Request], error: Exception) -> None:
        """Decides what a failed call means for each of its items."""
        seconds = sum(r.seconds for r in call)
        if transcribe.is_fatal_gpu_error(error):
            log.exception("unrecoverable GPU error")
            failure = GpuFailureError("the GPU failed while transcribing; the worker will be replaced")
            for request in call:
                _fail(request, failure)
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
            _fail(request, error)
            return
        request.fallbacks.append(f"{request.plan}: out of {exhausted}")
        next_plan = plans.next_plan(request.plan)
        if next_plan is None:
            message = (
                "the audio did not fit the GPU memory even in windows; try a larger GPU"
                if exhausted == "GPU memory"
                else "the audio did not fit this worker's memory even in windows"
            )
            _fail(request, GpuOutOfMemoryError(message))
            return
        request.plan = next_plan
        if next_plan == WINDOWED:
            window_seconds = transcribe.fallback_window_seconds(request.fallbacks)
            limit = transcribe.call_limit_seconds(request.model)
            window_seconds = window_seconds if limit is None else min(window_seconds, limit)
            request.windows = transcribe.window_plan(request.audio.size, window_seconds)
        self._requeue(request, fresh=False)


def _settle(request: _Request, transcript: Transcript) -> None:
    """Hands an item its transcript (unless its job stopped waiting), or fails it when it is no speech."""
    if not transcribe.plausible(transcript, request.seconds):
        words = len(transcript.text.split())
        log.warning("refusing a transcript of %d words for %.1f s of audio", words, request.seconds)
        _fail(
            request,
            UnreliableTranscriptError(
                f"the model's output is not speech ({words} words in {request.seconds:.1f} s of audio); "
                "the audio may be corrupt or not speech"
            ),
        )
        return
    if not request.future.done():
        request.future.set_result(transcript)


def _fail(request: "_Request | _Task", error: BaseException) -> None:
    """Hands an item the error that stopped it (unless its job stopped waiting)."""
    if not request.future.done():
        request.future.set_exception(error)


def _report(request: _Request, message: str) -> None:
    """Sends a progress message; a lost one never stops the scheduler."""
    try:
        request.progress(message)
    except Exception:
        log.exception("a progress report failed")


def _send_words(request: _Request, words: list[Word]) -> None:
    """Hands settled words to the item's stream; a failing stream never stops the scheduler."""
    try:
        request.on_words(words)  # type: ignore[misc]  (only called when set)
    except Exception:
        log.exception("sending settled words failed")


scheduler = Scheduler()
