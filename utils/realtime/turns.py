"""Server-side turn detection for live sessions: Silero VAD over the session's 16 kHz audio.

Silero judges 512-sample windows (32 ms). A turn starts at the first window whose speech probability
reaches the threshold (reported `prefix_padding_ms` earlier, so that the caller can send the audio just
before it too) and stops once `silence_duration_ms` of windows fall below a slightly lower release
threshold, as Silero's own streaming iterator does; its end is where that silence began. With an idle
timeout, one event marks a stretch without speech that long since the last turn (or the start).

Every detector shares the weights of the Silero model that `vad: true` loads, computed here in numpy,
and keeps its own recurrent state and context. The windows of one `feed` call go through the network's
front end as one batch; only the small recurrent cell steps through them one at a time.
"""

import functools
from dataclasses import dataclass

import numpy as np

import config
from utils.asr import vad

WINDOW = 512  # samples at 16 kHz, the only window Silero takes at that rate
_CONTEXT = 64  # samples of the previous window Silero prefixes to each window
_STATE = 128  # the recurrent cell's width
_REFLECT = 64  # samples mirrored after each window before its STFT
# The STFT's four 256-sample frames (hop 128) of a window with its context and reflection.
_STFT_FRAMES = np.arange(4)[:, None] * 128 + np.arange(256)
# The encoder's kernel-3 convolutions (strides 1, 2, 2, 1 over 4, 4, 2, 1 frames), as the indices of
# each output frame's three taps in the input zero-padded by one frame on each side.
_CONV_TAPS = tuple(
    np.arange(0, frames, stride)[:, None] + np.arange(3)
    for frames, stride in ((4, 1), (4, 2), (2, 2), (1, 1))
)
# Silero's streaming iterator releases speech below the threshold minus this, not at the threshold.
_RELEASE_MARGIN = 0.15
_MIN_RELEASE = 0.01
# Windows per network call: beyond about this many, BLAS spreads the products over threads that cost
# more than they save on a busy CPU.
_BATCH = 8


@dataclass(frozen=True)
class TurnSettings:
    """Server VAD's settings, as OpenAI's `turn_detection` names them."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    idle_timeout_ms: int | None = None


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began; the time is on the session's audio timeline, prefix padding applied."""

    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """Speech ended where the silence that stopped it began."""

    audio_end_ms: int


@dataclass(frozen=True)
class IdleTimeout:
    """No speech for `idle_timeout_ms` since the last turn ended (or the session began)."""

    at_ms: int


TurnEvent = SpeechStarted | SpeechStopped | IdleTimeout


@dataclass(frozen=True)
class _Weights:
    """Silero's 16 kHz network as numpy arrays: convolutions as `(taps * inputs, outputs)` matrices."""

    basis: np.ndarray  # (256, 258): the STFT's real and imaginary filters
    convs: tuple[tuple[np.ndarray, np.ndarray], ...]  # (matrix, bias) per layer
    input_gates: np.ndarray  # (128, 512), the LSTM cell's input weights, transposed
    hidden_gates: np.ndarray  # (128, 512)
    gate_bias: np.ndarray  # (512,)
    head: np.ndarray  # (128,)
    head_bias: float


@functools.cache
def _weights() -> _Weights:
    """The weights of the Silero model that `vad: true` loads, as numpy (read once)."""
    state = {
        name: value.numpy().astype(np.float32)
        for name, value in vad.silero_model()._model.state_dict().items()
    }
    convs = []
    for layer in range(len(_CONV_TAPS)):
        weight = state[f"encoder.{layer}.reparam_conv.weight"]  # (outputs, inputs, 3)
        matrix = weight.transpose(2, 1, 0).reshape(-1, weight.shape[0]).copy()
        convs.append((matrix, state[f"encoder.{layer}.reparam_conv.bias"]))
    return _Weights(
        basis=state["stft.forward_basis_buffer"][:, 0, :].T.copy(),
        convs=tuple(convs),
        input_gates=state["decoder.rnn.weight_ih"].T.copy(),
        hidden_gates=state["decoder.rnn.weight_hh"].T.copy(),
        gate_bias=state["decoder.rnn.bias_ih"] + state["decoder.rnn.bias_hh"],
        head=state["decoder.decoder.2.weight"][0, :, 0].copy(),
        head_bias=float(state["decoder.decoder.2.bias"][0]),
    )


def load() -> None:
    """Reads Silero's weights now, so that the first session's first audio does not wait for them."""
    _weights()


def _sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-values))


def _probabilities(windows: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speech probabilities of consecutive windows (each with its context in front), and the new state.

    Silero's network, computed in numpy: the front end (STFT magnitude, four convolutions) for all
    windows as one batch, then the LSTM cell window by window. Numpy rather than torch, because torch's
    thread pool costs far more than these small products on a busy CPU, and torch's thread count is
    process-wide.

    Args:
        windows: `(count, 64 + 512)` float32, in order.
        state: `(2, 128)`: the LSTM cell's hidden and cell vectors before the first window.

    Returns:
        The `count` probabilities and the state after the last window.
    """
    weights = _weights()
    count = windows.shape[0]
    padded = np.concatenate((windows, windows[:, -2 : -_REFLECT - 2 : -1]), axis=1)  # reflect, right
    spectrum = padded[:, _STFT_FRAMES] @ weights.basis  # (count, 4, 258)
    features = np.sqrt(spectrum[..., :129] ** 2 + spectrum[..., 129:] ** 2)  # (count, 4, 129)
    for (matrix, bias), gather in zip(weights.convs, _CONV_TAPS, strict=True):
        edge = np.zeros((count, 1, features.shape[2]), dtype=np.float32)
        taps = np.concatenate((edge, features, edge), axis=1)[:, gather]  # (count, length, 3, inputs)
        features = np.maximum(taps.reshape(count, gather.shape[0], -1) @ matrix + bias, 0.0)
    inputs = features[:, 0, :] @ weights.input_gates + weights.gate_bias  # (count, 512)
    hidden, cell = state[0], state[1]
    outputs = np.empty((count, _STATE), dtype=np.float32)
    for row in range(count):
        gates = inputs[row] + hidden @ weights.hidden_gates  # input, forget, cell, output (torch's order)
        opened = _sigmoid(gates)
        cell = opened[128:256] * cell + opened[:128] * np.tanh(gates[256:384])
        hidden = opened[384:] * np.tanh(cell)
        outputs[row] = hidden
    logits = np.maximum(outputs, 0.0) @ weights.head + weights.head_bias
    return _sigmoid(logits).astype(np.float32), np.stack((hidden, cell))


def _ms(samples: int) -> int:
    """Samples at 16 kHz → whole milliseconds."""
    return samples * 1000 // config.SAMPLE_RATE


class TurnDetector:
    """One session's server VAD: 16 kHz audio in, turn events out, on the session's audio timeline.

    Not safe for concurrent calls on one detector (a session feeds it in order); detectors of different
    sessions may run on different threads at once.
    """

    def __init__(self, settings: TurnSettings) -> None:
        """Starts a detector at the beginning of the session's timeline.

        Args:
            settings: Thresholds and durations.
        """
        self.settings = settings
        self._release = max(settings.threshold - _RELEASE_MARGIN, _MIN_RELEASE)
        self._silence_samples = settings.silence_duration_ms * config.SAMPLE_RATE // 1000
        self._fed = 0  # samples fed so far: the timeline
        self.reset()

    def reset(self) -> None:
        """Forgets the audio held and any turn in progress (after a clear); the timeline goes on."""
        self._state = np.zeros((2, _STATE), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._next = self._fed  # where the next window starts on the timeline
        self._speaking = False
        self._silence_from: int | None = None
        self._idle_from = self._fed
        self._idle_fired = False

    def feed(self, samples: np.ndarray) -> list[TurnEvent]:
        """Judges the whole windows that `samples` complete; a remainder waits for the next call.

        Args:
            samples: Float32 mono samples at 16 kHz, any length.

        Returns:
            The events those windows cause, in order.
        """
        self._fed += samples.size
        audio = np.concatenate((self._pending, samples.astype(np.float32, copy=False)))
        count = audio.size // WINDOW
        self._pending = audio[count * WINDOW :]
        if count == 0:
            return []
        frames = audio[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.concatenate((self._context[None, :], frames[:-1, -_CONTEXT:]))
        self._context = frames[-1, -_CONTEXT:].copy()
        windows = np.concatenate((contexts, frames), axis=1)
        events: list[TurnEvent] = []
        for first in range(0, count, _BATCH):
            probabilities, self._state = _probabilities(windows[first : first + _BATCH], self._state)
            for probability in probabilities.tolist():
                start = self._next
                self._next += WINDOW
                self._judge(probability, start, self._next, events)
        return events

    def _judge(self, probability: float, start: int, end: int, events: list[TurnEvent]) -> None:
        """One window's verdict: the state machine of Silero's streaming iterator, plus the idle timer."""
        settings = self.settings
        if probability >= settings.threshold:
            self._silence_from = None
            if not self._speaking:
                self._speaking = True
                padded = max(0, _ms(start) - settings.prefix_padding_ms)
                events.append(SpeechStarted(audio_start_ms=padded))
            return
        if self._speaking:
            if probability < self._release and self._silence_from is None:
                self._silence_from = start
            if self._silence_from is not None and end - self._silence_from >= self._silence_samples:
                events.append(SpeechStopped(audio_end_ms=_ms(self._silence_from)))
                self._speaking = False
                self._silence_from = None
                self._idle_from = end
                self._idle_fired = False
            return
        timeout = settings.idle_timeout_ms
        if timeout is not None and not self._idle_fired and _ms(end - self._idle_from) >= timeout:
            self._idle_fired = True
            events.append(IdleTimeout(at_ms=_ms(self._idle_from) + timeout))
