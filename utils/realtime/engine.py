"""Live turns on the worker's loaded model: many turns share batched streaming steps.

A turn (one conversation item) is opened with `engine.open_turn`, fed 16 kHz audio with `push`, ended
with `finish`, and read through `updates`. The engine keeps at most one step queued or running on the
scheduler's thread (`utils.asr.scheduler.run_live`, which goes before waiting file work). A step takes,
from every turn that has a full new chunk and its look-ahead (or that was finished), one frame (see
`utils.realtime.streaming`), all in one batched model step; chunks that arrive while it runs wait for
the next step. A turn that fell behind sends all its waiting chunks (up to `LIVE_MAX_CHUNKS_PER_STEP`)
as one longer frame.

Settled text: every token a step decodes is committed (the look-ahead is never decoded into a turn's
state), but a word's last piece may still come with the next step, so a word is sent only once the
next word has begun, or when the turn is finished. Deltas therefore never change, and the deltas of a
turn, joined, are its final text exactly.

Hotwords are per turn: the turns that have some are decoded with NeMo's per-stream boosting (each
distinct list a boosting tree of its own) in the same step, by a second decoding call.
"""

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveSettings:
    """How a turn is transcribed.

    Attributes:
        model: A served model (by its id or as configured; see `utils.asr.model.resolve`).
        delay: A key of `config.LIVE_DELAYS` (chunk and look-ahead).
        hotwords: Phrases to favour while decoding (boosted by `config.HOTWORD_WEIGHT`).
    """

    model: str
    delay: str
    hotwords: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveWord:
    """A settled word, in seconds on the session's audio timeline."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class LiveUpdate:
    """Newly settled text of a turn.

    Attributes:
        delta: The new text; the deltas of a turn joined are its final text exactly.
        words: The words this update settled.
        final: True once, after `finish`: the turn is fully decoded.
        text: When final, the whole turn's text; else "".
    """

    delta: str
    words: tuple[LiveWord, ...]
    final: bool
    text: str


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


class LiveTurn:
    """One turn's audio, decoder state and settled words; made by `LiveEngine.open_turn`."""

    def __init__(
        self, engine: "LiveEngine", settings: LiveSettings, model_name: str, start_seconds: float
    ) -> None:
        self._engine = engine
        self.settings = settings
        self.model_name = model_name
        self.start_seconds = start_seconds
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[LiveUpdate | BaseException | None] = asyncio.Queue()
        chunk, lookahead = config.LIVE_DELAYS[settings.delay]
        self._seconds = (chunk, lookahead, config.LIVE_LEFT_CONTEXT_SECONDS)
        # Sizes in samples, whole encoder frames of the model (known once its live pieces are).
        self._chunk = round(chunk * config.SAMPLE_RATE)
        self._lookahead = round(lookahead * config.SAMPLE_RATE)
        self._left = round(config.LIVE_LEFT_CONTEXT_SECONDS * config.SAMPLE_RATE)
        self._sized = False
        # Audio pushed since the last step, joined onto `_audio` when a step takes a frame.
        self._pieces: list[np.ndarray] = []
        self._audio = np.zeros(0, dtype=np.float32)
        self._base = 0  # the turn's sample index of _audio[0]
        self._received = 0
        self._decoded = 0  # samples decoded (committed) so far
        self._taking = 0  # samples the frame in the running step commits (0: none)
        self._taking_last = False  # whether that frame is the turn's last (finish came before it)
        self._finishing = False
        self._closed = False  # closed, finished or failed: nothing more to do
        self._state: Any = None
        # The live pieces holding the turn's hotwords (a reloaded model's new pieces hold them anew).
        self._boosted_by: streaming.LiveModel | None = None
        # Tokens (id, frame, duration) of the word still open, and the texts of the words sent.
        self._open: list[tuple[int, int, int]] = []
        self._sent: list[str] = []

    async def push(self, samples: np.ndarray) -> None:
        """Adds audio to the turn.

        Args:
            samples: 16 kHz mono float32 samples, any length.

        Raises:
            RuntimeError: The turn was already finished.
        """
        if samples.size == 0:
            return
        with self._engine.lock:
            if self._closed:
                return  # closed by a disconnect or clear while the audio was on its way
            if self._finishing:
                raise RuntimeError("push after finish: a finished turn takes no more audio")
            self._pieces.append(np.asarray(samples, dtype=np.float32).reshape(-1))
            self._received += samples.size
            ready = self._ready()
        if ready:  # most pushes complete no chunk: no need to look at every turn
            self._engine.wake()

    async def finish(self) -> None:
        """Ends the turn: what is left is decoded in the next step, without waiting for look-ahead."""
        with self._engine.lock:
            if self._closed or self._finishing:
                return
            self._finishing = True
        self._engine.wake()

    async def updates(self) -> AsyncIterator[LiveUpdate]:
        """The turn's updates as steps settle words; ends after the final one (or when closed).

        Yields:
            Each update.

        Raises:
            WorkerError: A subclass: the step that held the turn failed; the turn is over.
        """
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.final:
                return

    def close(self) -> None:
        """Frees the turn now (disconnect, clear) and ends `updates`; idempotent."""
        with self._engine.lock:
            if self._closed:
                return
            self._end()
        self._deliver(None)

    # --- Called by the engine, under its lock -----------------------------------------------------

    def _size(self, frame_samples: int) -> None:
        """Rounds chunk, look-ahead and left context to whole encoder frames of the model."""
        if self._sized:
            return

        def whole(seconds: float, least: int) -> int:
            return max(least, round(seconds * config.SAMPLE_RATE / frame_samples)) * frame_samples

        chunk, lookahead, left = self._seconds
        self._chunk, self._lookahead, self._left = whole(chunk, 1), whole(lookahead, 0), whole(left, 0)
        self._sized = True

    def _ready(self) -> bool:
        """Whether the turn has a frame for the next step."""
        if self._closed or self._taking:
            return False
        return self._finishing or self._received - self._decoded >= self._chunk + self._lookahead

    def _take_frame(self) -> streaming.Frame:
        """The turn's frame for the step about to run (`_ready` holds)."""
        if self._pieces:
            self._audio = np.concatenate([self._audio, *self._pieces])
            self._pieces = []
        left = min(self._left, self._decoded)
        start = self._decoded - left
        backlog = self._received - self._decoded
        most = config.LIVE_MAX_CHUNKS_PER_STEP * self._chunk
        # A finished turn's rest goes in one last frame, unless it is longer than a frame may be (one
        # large append): then frames of the most chunks go first, as for any turn that fell behind.
        self._taking_last = self._finishing and backlog <= most + self._lookahead
        if self._taking_last:
            end, commit = self._received, None
            self._taking = max(backlog, 1)
        else:
            chunks = min((backlog - self._lookahead) // self._chunk, config.LIVE_MAX_CHUNKS_PER_STEP)
            commit = chunks * self._chunk
            end = self._decoded + commit + self._lookahead
            self._taking = commit
        samples = self._audio[start - self._base : end - self._base]
        return streaming.Frame(samples, left, commit, self._state, self.settings.hotwords)

    def _chunks_taken(self) -> int:
        """How many chunks the frame in the running step covers (a last frame counts one)."""
        return 1 if self._taking_last else self._taking // self._chunk

    def _apply(self, tokens: streaming.Tokens, pieces: streaming.LiveModel) -> LiveUpdate | None:
        """Takes a step's settled tokens: the new decoder state, and the words they complete.

        Returns:
            The update to deliver (after the step has released what the turn held), if any.
        """
        if self._closed:
            return None
        self._state = tokens.state
        self._decoded += self._taking
        self._taking = 0
        keep_from = max(0, self._decoded - self._left)
        if keep_from > self._base:
            self._audio = self._audio[keep_from - self._base :].copy()
            self._base = keep_from
        self._open.extend(zip(tokens.ids, tokens.frames, tokens.durations, strict=True))
        # finish() may have come while the step ran: only a frame taken after it is the last.
        final = self._taking_last
        words = self._settle(pieces, final)
        texts = [word.word for word in words]
        delta = " ".join(texts)
        if delta and self._sent:
            delta = " " + delta
        self._sent.extend(texts)
        if final:
            self._end()
            return LiveUpdate(delta, tuple(words), True, " ".join(self._sent))
        return LiveUpdate(delta, tuple(words), False, "") if words else None

    def _settle(self, pieces: streaming.LiveModel, final: bool) -> list[LiveWord]:
        """The open tokens' complete words, removed from the open tokens: those a later word has begun
        after, the last one too when the turn is finished or the decoder has passed
        `LIVE_WORD_GAP_SECONDS` of silence after it (a piece after such a pause starts a word of its
        own)."""
        starts = [i for i, (token, _, _) in enumerate(self._open) if pieces.starts_word[token]]
        if not starts or starts[0] != 0:
            starts.insert(0, 0)
        bounds = starts
        if self._open:
            _, frame, duration = self._open[-1]
            decoded_frames = self._decoded // pieces.frame_samples
            gap = round(config.LIVE_WORD_GAP_SECONDS / pieces.current.frame_seconds)
            if final or decoded_frames - (frame + duration) >= gap:
                bounds = [*starts, len(self._open)]
        seconds = pieces.current.frame_seconds
        words = []
        for begin, end in itertools.pairwise(bounds):
            group = self._open[begin:end]
            text = pieces.tokenizer.ids_to_text([token for token, _, _ in group]).strip()
            if not text:
                continue  # a lone word-start piece: no word of its own
            start = round(self.start_seconds + group[0][1] * seconds, 3)
            stop = round(self.start_seconds + (group[-1][1] + group[-1][2]) * seconds, 3)
            words.append(LiveWord(text, start, max(start, stop)))
        self._open = self._open[bounds[-1] :] if len(bounds) > 1 else self._open
        return words

    def _fail(self, error: WorkerError) -> WorkerError | None:
        """Ends the turn with the error its step raised.

        Returns:
            The error to deliver (after the step has released what the turn held), unless the turn
            had already ended.
        """
        if self._closed:
            return None
        self._end()
        return error

    def _end(self) -> None:
        """Frees the turn's audio and state and takes it off the engine (the lock is held)."""
        self._closed = True
        self._pieces, self._audio, self._state, self._open = [], np.zeros(0, dtype=np.float32), None, []
        self._engine.forget(self)

    def _deliver(self, item: "LiveUpdate | BaseException | None") -> None:
        """Hands an item to `updates` on the turn's event loop (from any thread)."""
        # A closed loop raises: nobody reads this turn any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


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
                self._model_step(name)
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
