"""What the scheduler (`utils.asr.scheduler`) queues: file items (`Request`) and other device work
(`Task`, the live engine's steps too), and how each one is cut, settled or failed."""

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import config
from utils.asr import transcribe
from utils.asr.decoding import Boost
from utils.asr.plans import WINDOWED
from utils.asr.records import CONFIDENCE, LOGPROBS, Timestamps, Transcript, Word
from utils.asr.windows import Window
from utils.errors import UnreliableTranscriptError
from utils.job.deadline import Deadline

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
# Receives the words of a windowed item as they are settled, window by window (a stream's deltas).
WordSink = Callable[[list[Word]], None]


@dataclass(eq=False)
class Request:
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

    def joins(self, other: "Request") -> bool:
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
class Task:
    """Other work for the device, run alone on the scheduler's thread in its turn."""

    work: Callable[[], Any]
    deadline: Deadline | None  # None: a live step (never in the queue that deadlines are checked in)
    future: "Future[Any]"
    ready_at: float
    seconds: float = 0.0
    alone: bool = True
    plan: str = "task"

    def joins(self, other: Any) -> bool:
        """A task shares its turn with nothing."""
        return False


def shorten(request: Request, most: float) -> None:
    """Cuts an item that has not started into windows of at most `most` seconds when it is longer, so
    that no call of it takes more audio than a file call may take now (`transcribe.call_limit_seconds`);
    its plan's window length is kept when shorter.

    Args:
        request: The item about to be chosen for a call.
        most: The most audio one call may take, in seconds.
    """
    if request.parts or request.seconds <= most:
        return
    if request.plan == WINDOWED:
        longest = max(window.end - window.start for window in request.windows) / config.SAMPLE_RATE
        if longest <= most:
            return
    request.plan = WINDOWED
    length = min(most, transcribe.fallback_window_seconds(request.fallbacks))
    request.windows = transcribe.window_plan(request.audio.size, length)


def settle(request: Request, transcript: Transcript) -> None:
    """Hands an item its transcript (unless its job stopped waiting), or fails it when it is no speech.

    Args:
        request: The item.
        transcript: Its transcript.
    """
    if not transcribe.plausible(transcript, request.seconds):
        words = len(transcript.text.split())
        log.warning("refusing a transcript of %d words for %.1f s of audio", words, request.seconds)
        fail(
            request,
            UnreliableTranscriptError(
                f"the model's output is not speech ({words} words in {request.seconds:.1f} s of audio); "
                "the audio may be corrupt or not speech"
            ),
        )
        return
    if not request.future.done():
        request.future.set_result(transcript)


def fail(request: "Request | Task", error: BaseException) -> None:
    """Hands an item or task the error that stopped it (unless its job stopped waiting).

    Args:
        request: The item or task.
        error: What stopped it.
    """
    if not request.future.done():
        request.future.set_exception(error)


def report(request: Request, message: str) -> None:
    """Sends a progress message; a lost one never stops the scheduler.

    Args:
        request: The item.
        message: The message.
    """
    try:
        request.progress(message)
    except Exception:
        log.exception("a progress report failed")


def send_words(request: Request, words: list[Word]) -> None:
    """Hands settled words to the item's stream; a failing stream never stops the scheduler.

    Args:
        request: The windowed item (its `on_words` is set).
        words: The words newly settled.
    """
    try:
        request.on_words(words)  # type: ignore[misc]  (only called when set)
    except Exception:
        log.exception("sending settled words failed")
