"""One live turn: its audio, the frames it gives the engine's steps, its decoder state and settled words.

`utils.realtime.engine` makes turns and runs their steps; the records a door sees (`LiveSettings`,
`LiveWord`, `LiveUpdate`) are declared here and exported by the engine. Every method whose name starts
with an underscore is called by the engine with its lock held (except `_deliver`).
"""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

import config
from utils.errors import WorkerError
from utils.realtime import streaming

if TYPE_CHECKING:
    from utils.realtime.engine import LiveEngine


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
            self._pieces.append(np.array(samples, dtype=np.float32).reshape(-1))  # a copy: buffers get reused
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

    @property
    def waiting_seconds(self) -> float:
        """Seconds of the turn's audio pushed and not yet decoded (0 once it is closed or done)."""
        with self._engine.lock:
            return 0.0 if self._closed else (self._received - self._decoded) / config.SAMPLE_RATE

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
