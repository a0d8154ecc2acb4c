"""One live transcription session: the state machine behind one WebSocket connection.

The client appends audio (base64, in the session's format); it is turned into 16 kHz mono and laid on
the session's audio timeline (milliseconds of audio received, which every `audio_start_ms`, `audio_end_ms`
and word time refers to). A turn is one conversation item, transcribed by the live engine as it comes:
- with server VAD (or `semantic_vad`), a turn opens at `speech_started` (the prefix padding included,
  taken from a few seconds of audio kept for that) and ends at `speech_stopped`;
- with `turn_detection: null`, the first append after a commit or clear opens one and the client's
  commit ends it.
The engine's settled words come back as deltas while the turn goes on; the end of a turn is committed
(`input_audio_buffer.committed`, `conversation.item.added`) and its last words follow with `.completed`.
A turn longer than `REALTIME_MAX_TURN_SECONDS` is committed where it stands under server VAD (speech
goes on in a new turn); without turn detection an append beyond it is refused.

Any event the session cannot take gets an `error` event, and the session goes on. Conversion and turn
detection run on a worker thread, so the event loop only moves events.
"""

import asyncio
import base64
import binascii
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import config
from utils.asr import decoding
from utils.asr import model as asr_model
from utils.asr.records import Word
from utils.errors import InvalidInputError, WorkerError
from utils.realtime import engine as live_engine
from utils.realtime import events, protocol, settings
from utils.realtime.audio_in import InputAudio
from utils.realtime.turns import IdleTimeout, SpeechStarted, SpeechStopped, TurnDetector, TurnSettings
from utils.text import language, number_stream

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]


class ClientGone(Exception):
    """The connection is closed: nothing more can be sent (raised by the `send` a session is given)."""


_RATE = config.SAMPLE_RATE
# Audio kept behind the newest sample: the longest prefix padding, and the detector's lag behind it.
_HISTORY_SAMPLES = (config.REALTIME_PREFIX_PADDING_MS_BOUNDS[1] + 1000) * _RATE // 1000
# The base64 text of the largest append.
_MAX_APPEND_CHARS = (config.REALTIME_MAX_APPEND_BYTES + 2) // 3 * 4
# Messages and audio longer than this are read on a worker thread (tens of milliseconds each).
_LARGE_MESSAGE_CHARS = 1024 * 1024
_BACKLOG_POLL_SECONDS = 0.05  # how often an append held back for the model looks again


def _ms(position: int) -> int:
    """A position on the session's timeline (16 kHz samples) in whole milliseconds."""
    return position * 1000 // _RATE


class _History:
    """The newest seconds of the session's 16 kHz audio, addressed by position on its timeline."""

    def __init__(self) -> None:
        self._pieces: deque[tuple[int, np.ndarray]] = deque()
        self.end = 0  # the timeline's length: samples received so far

    @property
    def start(self) -> int:
        """The oldest position still held."""
        return self._pieces[0][0] if self._pieces else self.end

    def add(self, samples: np.ndarray) -> None:
        """Lays new audio at the end of the timeline."""
        if samples.size:
            self._pieces.append((self.end, samples))
            self.end += samples.size

    def span(self, start: int, end: int) -> np.ndarray:
        """The audio from `start` to `end` (positions held; older ones are clamped)."""
        parts = [
            piece[max(start - at, 0) : end - at]
            for at, piece in self._pieces
            if at < end and at + piece.size > start
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def trim(self) -> None:
        """Forgets pieces wholly older than the history kept."""
        while self._pieces and self._pieces[0][0] + self._pieces[0][1].size < self.end - _HISTORY_SAMPLES:
            self._pieces.popleft()


@dataclass(eq=False)
class _Turn:
    """A turn being transcribed: its item, its engine turn and its place on the timeline."""

    item_id: str
    live: live_engine.LiveTurn
    start: int
    pushed: int
    language: str | None = None  # the session's language when the turn began (checked, never forced)
    numbers: str = "spoken"  # or "digits"
    end: int | None = None
    relay: "asyncio.Task[None] | None" = None


class Session:
    """One connection's transcription session."""

    def __init__(self, send: Send, on_gpu_failure: Callable[[], None] = lambda: None) -> None:
        """A new session with the default settings (nothing is sent until `start`).

        Args:
            send: Sends one server event to the client; raises `ClientGone` once the connection is gone.
            on_gpu_failure: Called when a turn fails because the GPU did (the worker is then unhealthy).
        """
        self.id = events.new_id("sess")
        self.expires_at = int(time.time() + config.REALTIME_MAX_SESSION_SECONDS)
        self.settings = settings.default_settings()
        self._send = send
        self._on_gpu_failure = on_gpu_failure
        self._audio = InputAudio(self.settings.format_type, self.settings.rate)
        self._history = _History()
        self._detector: TurnDetector | None = None
        self._detector_origin = 0  # the timeline position where the detector's own clock starts
        self._new_detector()
        self._turn: _Turn | None = None
        self._turns: set[_Turn] = set()  # open or finishing
        self._previous_item: str | None = None
        self._floor = 0  # audio before this position was cleared or belongs to an ended turn
        self._closed = False
        self.turns_committed = 0

    # --- The connection's side ------------------------------------------------------------------

    async def start(self) -> None:
        """Sends `session.created` with the whole effective configuration."""
        await self._send(events.event("session.created", session=self._session_object()))

    async def handle(self, text: str) -> None:
        """Takes one client message; whatever is wrong with it is answered with an `error` event.

        Args:
            text: The message's text.
        """
        client_event_id = None
        try:
            if len(text) > _LARGE_MESSAGE_CHARS:  # a big append: read it off the event loop
                event = await asyncio.to_thread(protocol.parse_event, text)
            else:
                event = protocol.parse_event(text)
            client_event_id = event.event_id
            await self._dispatch(event)
        except ClientGone:
            raise
        except protocol.EventError as error:
            await self._send(
                events.error(str(error), error.code, error.param, client_event_id or error.event_id)
            )
        except WorkerError as error:
            await self._send(events.error(str(error), error.error_type, None, client_event_id, True))
        except Exception:
            log.exception("a live session's event failed")
            message = "internal error; the server logged the details"
            await self._send(events.error(message, "internal", None, client_event_id, True))

    async def drain(self) -> None:
        """Ends the open turn and waits (a bounded time) for every turn's transcript to be sent."""
        if self._turn is not None:
            await self._advance(self._history.end)
            await self._end_turn(self._history.end)
        relays = [turn.relay for turn in self._turns if turn.relay is not None]
        if relays:
            await asyncio.wait(relays, timeout=config.REALTIME_CLOSE_WAIT_SECONDS)

    def close(self) -> None:
        """Frees the session's turns now (the client left); idempotent."""
        self._closed = True
        self._turn = None
        for turn in list(self._turns):
            turn.live.close()
            if turn.relay is not None:
                turn.relay.cancel()
        self._turns.clear()

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received so far."""
        return self._history.end / _RATE

    @property
    def active_turns(self) -> int:
        """Turns open or still being transcribed."""
        return len(self._turns)

    # --- Events ----------------------------------------------------------------------------------

    async def _dispatch(self, event: protocol.ClientEvent) -> None:
        if isinstance(event, protocol.SessionUpdate):
            await self._update(settings.apply(self.settings, event.session))
            await self._send(events.event("session.updated", session=self._session_object()))
        elif isinstance(event, protocol.BetaSessionUpdate):
            await self._update(settings.apply_beta(self.settings, event.session))
            beta = events.beta_session_object(self.settings, self.id, self.expires_at)
            await self._send(events.event("transcription_session.updated", session=beta))
        elif isinstance(event, protocol.Append):
            await self._append(event.audio)
        elif isinstance(event, protocol.Commit):
            await self._commit()
        else:
            await self._clear()
            await self._send(events.cleared())

    def _session_object(self) -> dict[str, Any]:
        return events.session_object(self.settings, self.id, self.expires_at)

    async def _update(self, new: settings.SessionSettings) -> None:
        """Takes new settings: a new format or turn detection starts afresh from here."""
        old = self.settings
        wanted, had = new.transcription, old.transcription
        if wanted.keywords and (wanted.keywords, wanted.model) != (had.keywords, had.model):
            await asyncio.to_thread(_check_spelling, wanted)
        if new.format_type != old.format_type:
            self._audio = InputAudio(new.format_type, new.rate)
        if new.turn_detection != old.turn_detection:
            if self._turn is not None:  # the turn in progress ends under the rules it began with
                await self._end_turn(self._turn.pushed)
            self.settings = new
            self._new_detector()
        else:
            self.settings = new

    def _new_detector(self) -> None:
        vad = self.settings.turn_detection
        self._detector = None
        if vad is not None:
            turn_settings = TurnSettings(
                vad.threshold, vad.prefix_padding_ms, vad.silence_duration_ms, vad.idle_timeout_ms
            )
            self._detector = TurnDetector(turn_settings)
            self._detector_origin = self._history.end

    async def _append(self, audio: str) -> None:
        if len(audio) > _MAX_APPEND_CHARS:
            raise protocol.EventError(
                f"audio holds more than {config.REALTIME_MAX_APPEND_BYTES // 1024**2} MiB; send it in "
                "smaller appends",
                "invalid_value",
                "audio",
            )
        try:
            if len(audio) > _LARGE_MESSAGE_CHARS:
                raw = await asyncio.to_thread(base64.b64decode, audio, validate=True)
            else:
                raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise protocol.EventError("audio must be base64 (RFC 4648)", "invalid_value", "audio") from None
        if not raw:
            return
        most = config.REALTIME_MAX_TURN_SECONDS
        # Over REALTIME_MAX_TURN_SECONDS waiting for the model: the append (and the client) waits.
        while not self._closed and sum(turn.live.waiting_seconds for turn in list(self._turns)) > most:
            await asyncio.sleep(_BACKLOG_POLL_SECONDS)
        if self.settings.turn_detection is None:
            held = self._history.end - self._turn.start if self._turn is not None else 0
            coming = self._audio.seconds(len(raw)) * _RATE
            if held + coming > config.REALTIME_MAX_TURN_SECONDS * _RATE:
                raise protocol.EventError(
                    f"the input audio buffer would hold more than {config.REALTIME_MAX_TURN_SECONDS:g} s "
                    "(REALTIME_MAX_TURN_SECONDS); commit or clear it first",
                    "input_audio_buffer_full",
                    "audio",
                )
        samples, found = await asyncio.to_thread(self._convert, raw)
        chunk_start = self._history.end
        self._history.add(samples)
        if self.settings.turn_detection is None:
            if self._turn is None and samples.size:
                await self._open_turn(chunk_start, announce=False)
        else:
            for turn_event in found:
                await self._on_turn_event(turn_event)
        if self._turn is not None:
            await self._advance(self._history.end)
        self._history.trim()

    def _convert(self, raw: bytes) -> tuple[np.ndarray, list[Any]]:
        """The appended audio at 16 kHz, and the turn events it causes (on a worker thread)."""
        samples = self._audio.feed(raw)
        found = self._detector.feed(samples) if self._detector is not None else []
        return samples, found

    async def _on_turn_event(self, found: SpeechStarted | SpeechStopped | IdleTimeout) -> None:
        origin = self._detector_origin
        if isinstance(found, SpeechStarted):
            if self._turn is None:
                position = origin + found.audio_start_ms * _RATE // 1000
                await self._open_turn(max(position, self._floor, self._history.start), announce=True)
        elif isinstance(found, SpeechStopped):
            vad = self.settings.turn_detection
            if self._turn is not None and vad is not None:
                # As OpenAI's audio_end_ms: the end of the audio the model hears, the silence that ended
                # the turn included (which also lets the model settle the last word).
                silent_from = origin + found.audio_end_ms * _RATE // 1000
                position = silent_from + vad.silence_duration_ms * _RATE // 1000
                position = max(min(position, self._history.end), self._turn.start)
                await self._advance(position)
                if self._turn is not None:
                    await self._send(events.speech_stopped(self._turn.item_id, _ms(position)))
                    await self._end_turn(position)
        else:
            timeout = self.settings.turn_detection.idle_timeout_ms if self.settings.turn_detection else 0
            end_ms = _ms(origin) + found.at_ms
            await self._send(events.timeout_triggered(events.new_id("item"), end_ms - (timeout or 0), end_ms))

    async def _commit(self) -> None:
        held = self._history.end - self._turn.start if self._turn is not None else 0
        if held * 1000 < config.REALTIME_MIN_COMMIT_MS * _RATE:
            least = config.REALTIME_MIN_COMMIT_MS
            why = f"{_ms(held)} ms of audio"
            if self.settings.turn_detection is not None and self._turn is None:
                why = "no speech since the last turn"
            raise protocol.EventError(
                f"the input audio buffer holds {why}; a commit needs at least {least} ms",
                "input_audio_buffer_commit_empty",
            )
        await self._advance(self._history.end)
        await self._end_turn(self._history.end)
        if self._detector is not None:
            self._detector.reset()  # the next speech starts a new turn

    async def _clear(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.live.close()
            if turn.relay is not None:
                turn.relay.cancel()
            self._turns.discard(turn)
        self._audio.reset()
        if self._detector is not None:
            self._detector.reset()
        self._floor = self._history.end

    # --- Turns -----------------------------------------------------------------------------------

    async def _open_turn(self, position: int, announce: bool) -> None:
        transcription = self.settings.transcription
        wanted = live_engine.LiveSettings(transcription.model, transcription.delay, transcription.keywords)
        live = live_engine.engine.open_turn(wanted, position / _RATE)
        turn = _Turn(
            events.new_id("item"), live, position, position, transcription.language, transcription.numbers
        )
        self._turn = turn
        self._turns.add(turn)
        turn.relay = asyncio.create_task(self._relay(turn))
        if announce:
            await self._send(events.speech_started(turn.item_id, _ms(position)))

    async def _advance(self, target: int) -> None:
        """Pushes the open turn's audio up to `target`; a turn that reaches the longest a turn may be is
        committed there, and under turn detection the speech goes on in a new turn."""
        longest = round(config.REALTIME_MAX_TURN_SECONDS * _RATE)
        while self._turn is not None:
            turn = self._turn
            limit = turn.start + longest
            upto = min(target, limit)
            if upto > turn.pushed:
                await turn.live.push(self._history.span(turn.pushed, upto))
                turn.pushed = upto
            if turn.pushed < limit:
                return
            await self._end_turn(limit)
            if self.settings.turn_detection is None:
                return
            await self._open_turn(limit, announce=True)

    async def _end_turn(self, position: int) -> None:
        """Commits the open turn at `position`; its transcript follows from its relay."""
        turn, self._turn = self._turn, None
        if turn is None:
            return
        turn.end = max(position, turn.start)
        self._floor = max(self._floor, turn.end)
        await self._send(events.committed(turn.item_id, self._previous_item))
        await self._send(events.item_added(turn.item_id, self._previous_item))
        self._previous_item = turn.item_id
        self.turns_committed += 1
        await turn.live.finish()

    async def _relay(self, turn: _Turn) -> None:
        """Sends a turn's deltas as they settle, then its `.completed` (or `.failed`). With numbers as
        digits, a number's last words wait for the next ones (they may go on: "twenty" | "five"); the
        deltas joined are the completed transcript either way."""
        digits = number_stream.SettledDigits(turn.language) if turn.numbers == "digits" else None
        sent: list[str] = []
        words: list[Word] = []
        try:
            async for update in turn.live.updates():
                settled = [Word(word.word, word.start, word.end) for word in update.words]
                if digits is not None:
                    settled = digits.feed(settled) + (digits.finish() if update.final else [])
                text = " ".join(word.word for word in settled)
                if text:
                    await self._send(events.delta(turn.item_id, f" {text}" if sent else text))
                    sent.append(text)
                words.extend(settled)
                if update.final:
                    found = await asyncio.to_thread(language.detect_expecting, update.text, turn.language)
                    seconds = ((turn.end if turn.end is not None else turn.pushed) - turn.start) / _RATE
                    transcript = " ".join(sent)
                    done = events.completed(turn.item_id, transcript, seconds, found.language, words)
                    await self._send(done)
        except WorkerError as error:
            if error.error_type == "gpu_failure":
                self._on_gpu_failure()
            await self._send_quietly(events.failed(turn.item_id, str(error), error.error_type))
        except ClientGone:
            pass  # the client left; close() frees the turn
        except Exception:
            log.exception("a live turn's relay failed")
        finally:
            turn.live.close()
            self._turns.discard(turn)

    async def _send_quietly(self, event: dict[str, Any]) -> None:
        """Sends unless the connection is gone."""
        if self._closed:
            return
        try:
            await self._send(event)
        except ClientGone:
            log.debug("a live session's event could not be sent: the client left")


def _check_spelling(transcription: settings.TranscriptionSettings) -> None:
    """Refuses keywords the model cannot write, naming the keyword (on a worker thread)."""
    boost = decoding.Boost(transcription.keywords, config.HOTWORD_WEIGHT)
    try:
        decoding.check_spelling(asr_model.get_model(transcription.model), boost)
    except InvalidInputError as error:
        path = "session.audio.input.transcription.keywords"
        message = str(error).replace("hotwords", path, 1)
        raise protocol.EventError(message, "invalid_value", message.split(" ", 1)[0]) from None
