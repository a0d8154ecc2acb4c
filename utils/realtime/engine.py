"""Live turns on the worker's loaded model: many turns share batched streaming steps.

A turn (one conversation item) is opened with `engine.open_turn`, fed 16 kHz audio with `push`, ended
with `finish`, and read through `updates`. The engine keeps at most one step queued or running on the
scheduler's thread (`utils.asr.scheduler.run_live`, which goes before waiting file work). A step takes,
from every turn that has a full new chunk and its look-ahead (or that was finished), one frame (see
`utils.realtime.streaming`), all in one batched model step; chunks that arrive while it runs wait for
the next step. A turn that fell behind sends all its waiting chunks (up to `LIVE_MAX_CHUNKS_PER_STEP`)
as one longer frame.

Settled text (`utils.realtime.streaming_turn`): every token a step decodes is committed (the look-ahead
is never decoded into a turn's state), but a word's last piece may still come with the next step, so a
word is sent only once the next word has begun, the decoder has passed `LIVE_WORD_GAP_SECONDS` of
silence after it, or the turn is finished. Deltas therefore never change, and the deltas of a turn,
joined, are its final text exactly.

Hotwords are per turn: the turns that have some are decoded with NeMo's per-stream boosting (each
distinct list a boosting tree of its own) in the same step, by a second decoding call.
"""

import logging
import threading
import time
from dataclasses import dataclass

import config
from utils.asr import decoding, transcribe
from utils.asr import model as asr_model
from utils.asr.scheduler import scheduler
from utils.errors import (
    GpuFailureError,
    GpuOutOfMemoryError,
    InternalError,
    InvalidInputError,
    WorkerError,
)
from utils.realtime import streaming
from utils.realtime.streaming_turn import LiveSettings, LiveTurn, LiveUpdate, LiveWord

__all__ = ["LiveEngine", "LiveSettings", "LiveStats", "LiveTurn", "LiveUpdate", "LiveWord", "engine"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveStats:
    """What the engine has done since the process started (for tests and benchmarks).

    Attributes:
        steps: Batched model steps (one encoder call each).
        frames: Turn frames those steps held.
        chunks: Chunks those frames covered (a turn's final frame counts as one).
    """

    steps: int
    frames: int
    chunks: int


class LiveEngine:
    """The live turns of this process and their steps on the scheduler's thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._turns: list[LiveTurn] = []
        # Hotword holds of ended turns, released on the scheduler's thread: (model, hotwords).
        self._released: list[tuple[streaming.LiveModel, tuple[str, ...]]] = []
        # A step is queued or running; or a timer waits for the interval between step starts.
        self._scheduled = False
        self._timer: threading.Timer | None = None
        self._last_start = 0.0
        self._stats = [0, 0, 0]

    def open_turn(self, settings: LiveSettings, start_seconds: float) -> LiveTurn:
        """Starts a turn (call it on the event loop that will read its updates).

        Args:
            settings: The turn's model, delay and hotwords.
            start_seconds: Where the turn's first sample lies on the session's audio timeline.

        Returns:
            The turn.

        Raises:
            InvalidInputError: The model is not served or the delay is not in `config.LIVE_DELAYS`.
        """
        if settings.delay not in config.LIVE_DELAYS:
            names = ", ".join(config.LIVE_DELAYS)
            raise InvalidInputError(f"delay must be one of {names}, got {settings.delay!r}")
        model_name = asr_model.resolve(settings.model)
        turn = LiveTurn(self, settings, model_name, start_seconds)
        with self.lock:
            self._turns.append(turn)
            scheduler.hold_live()
        return turn

    def session_opened(self) -> None:
        """Counts a live session open: until `session_closed`, file calls on the scheduler are kept
        short (`LIVE_FILE_CALL_SECONDS`), so that the session's next turn never waits for a long one.
        Open turns count by themselves; a session covers the pauses between its turns."""
        scheduler.hold_live()

    def session_closed(self) -> None:
        """Counts a live session closed (once per `session_opened`)."""
        scheduler.release_live()

    def stats(self) -> LiveStats:
        """Counts of steps, frames and chunks so far.

        Returns:
            The counts.
        """
        with self.lock:
            return LiveStats(*self._stats)

    def open_turns(self) -> int:
        """How many turns are open (not yet finished, failed or closed).

        Returns:
            The count.
        """
        with self.lock:
            return len(self._turns)

    def forget(self, turn: LiveTurn) -> None:
        """Takes an ended turn off the engine (the lock is held)."""
        if turn in self._turns:
            self._turns.remove(turn)
            scheduler.release_live()
        if turn._boosted_by is not None:
            self._released.append((turn._boosted_by, turn.settings.hotwords))
            turn._boosted_by = None

    def wake(self) -> None:
        """Queues a step on the scheduler when a turn has work, unless one is queued or running.

        Steps start at most every `LIVE_STEP_INTERVAL_SECONDS` (a timer waits out the rest), except
        for a finished turn, whose step is queued at once.
        """
        with self.lock:
            ready = [turn for turn in self._turns if turn._ready()]
            if self._scheduled or not ready:
                return
            urgent = any(turn._finishing for turn in ready)
            if self._timer is not None and not urgent:
                return
            wait = self._last_start + config.LIVE_STEP_INTERVAL_SECONDS - time.monotonic()
            if wait > 0 and not urgent:
                self._timer = threading.Timer(wait, self._tick)
                self._timer.daemon = True
                self._timer.start()
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._scheduled = True
        scheduler.run_live(self._step)

    def _tick(self) -> None:
        """The interval timer ran out: the step it waited for may go."""
        with self.lock:
            if self._timer is not threading.current_thread():
                return  # cancelled: a finished turn's step went first
            self._timer = None
        self.wake()

    def _step(self) -> None:
        """One step (on the scheduler's thread): every ready turn's frame, batched per model."""
        self._last_start = time.monotonic()
        try:
            self._release_boosts()
            with self.lock:
                models = list(dict.fromkeys(turn.model_name for turn in self._turns if turn._ready()))
            for name in models:
                try:
                    self._model_step(name)
                except Exception as error:  # noqa: BLE001  (a bug: end the model's turns, not loop on it)
                    with self.lock:
                        turns = [turn for turn in self._turns if turn.model_name == name]
                    self._fail_turns(turns, error)
        finally:
            with self.lock:
                self._scheduled = False
            self.wake()

    def _model_step(self, name: str) -> None:
        """The batched step of one model's ready turns; a failure fails only those turns."""
        try:
            pieces = streaming.live_model(name)
        except Exception as error:  # noqa: BLE001  (the model's turns get it)
            self._fail_turns([t for t in self._turns if t.model_name == name], error)
            return
        with self.lock:
            for turn in self._turns:
                if turn.model_name == name:
                    turn._size(pieces.frame_samples)
            boosting = [
                t
                for t in self._turns
                if t.model_name == name and t.settings.hotwords and t._boosted_by is not pieces
            ]
        for turn in boosting:
            self._hold_boost(pieces, turn)
        with self.lock:
            turns = [turn for turn in self._turns if turn.model_name == name and turn._ready()]
            frames = [turn._take_frame() for turn in turns]
        if not turns:
            return
        # A finished turn with no new audio needs no model: its open word is settled as it is.
        busy = [i for i, frame in enumerate(frames) if frame.samples.size > frame.left_samples]
        try:
            outputs = pieces.step([frames[i] for i in busy]) if busy else []
        except Exception as error:  # noqa: BLE001  (the turns of this step get it)
            self._fail_turns(turns, error)
            return
        results = [streaming.Tokens(state=frame.state) for frame in frames]
        for i, tokens in zip(busy, outputs, strict=True):
            results[i] = tokens
        with self.lock:
            self._stats[0] += 1 if busy else 0
            self._stats[1] += len(busy)
            self._stats[2] += sum(turns[i]._chunks_taken() for i in busy)
            updates = [turn._apply(tokens, pieces) for turn, tokens in zip(turns, results, strict=True)]
        self._deliver(turns, updates)

    def _hold_boost(self, pieces: streaming.LiveModel, turn: LiveTurn) -> None:
        """Adds a turn's hotwords to its model's boosting decoder; a phrase the model cannot write
        fails the turn."""
        hotwords = turn.settings.hotwords
        try:
            decoding.check_spelling(pieces.current.model, decoding.Boost(hotwords, config.HOTWORD_WEIGHT))
            pieces.hold_boost(hotwords)
        except Exception as error:  # noqa: BLE001  (the turn gets it)
            self._fail_turns([turn], error)
            return
        with self.lock:
            if turn._closed:
                self._released.append((pieces, hotwords))
            else:
                turn._boosted_by = pieces

    def _fail_turns(self, turns: list[LiveTurn], error: Exception) -> None:
        """Ends `turns` with the error a step (or their model) raised."""
        failure = _live_failure(error, turns)
        with self.lock:
            errors = [turn._fail(failure) for turn in turns]
        self._deliver(turns, errors)

    def _deliver(self, turns: list[LiveTurn], items: "list[LiveUpdate | WorkerError | None]") -> None:
        """Releases what ended turns held, then hands each turn its update or error (if any), so that
        a reader who sees a turn end sees it gone."""
        self._release_boosts()
        for turn, item in zip(turns, items, strict=True):
            if item is not None:
                turn._deliver(item)

    def _release_boosts(self) -> None:
        """Drops the boosting trees of ended turns (on the scheduler's thread, between decodings)."""
        with self.lock:
            released, self._released = self._released, []
        for pieces, hotwords in released:
            pieces.release_boost(hotwords)


def _live_failure(error: Exception, turns: list[LiveTurn]) -> WorkerError:
    """The error a failed step's turns get."""
    if isinstance(error, WorkerError):
        return error
    if transcribe.is_fatal_gpu_error(error):
        log.exception("unrecoverable GPU error in a live step")
        return GpuFailureError("the GPU failed while transcribing live; the worker will be replaced")
    seconds = sum(turn._taking for turn in turns) / config.SAMPLE_RATE
    exhausted = transcribe.memory_exhausted(error, "live", seconds)
    if exhausted is not None:
        return GpuOutOfMemoryError(f"a live step ran out of {exhausted}")
    log.error("a live step failed", exc_info=error)
    return InternalError()


engine = LiveEngine()
