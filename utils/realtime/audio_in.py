"""A live session's input audio, as the client sends it, turned into the model's 16 kHz mono float32.

Formats, as OpenAI's Realtime API names them: `audio/pcm` (16-bit little-endian mono at 24 kHz, the
only rate it defines), `audio/pcmu` (G.711 μ-law) and `audio/pcma` (G.711 A-law), both at 8 kHz as
telephony sends them. G.711 is decoded with 256-entry tables. The rate is changed by a polyphase
Kaiser-windowed sinc filter whose history is carried from one call to the next, so that the output is
the same, sample for sample, however the bytes are split into appends; no process is started.
"""

import numpy as np

import config

# The formats handled, with the one rate each is accepted at.
RATES = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}
# Filter taps per polyphase branch: 32 give about 60 dB of image and alias rejection here.
_TAPS_PER_PHASE = 32
_KAISER_BETA = 6.0
# The pass band ends at this fraction of the lower of the two Nyquist frequencies.
_CUTOFF = 0.9


def _mulaw_table() -> np.ndarray:
    """G.711 μ-law code → linear sample, as float32 in [-1, 1] (the ITU's 14-bit values, scaled)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(codes & 0x80, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    """G.711 A-law code → linear sample, as float32 in [-1, 1] (the ITU's 13-bit values, scaled)."""
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (codes >> 4) & 0x07
    mantissa = (codes & 0x0F) << 4
    magnitude = np.where(segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0))
    linear = np.where(codes & 0x80, magnitude, -magnitude)
    return (linear / 32768.0).astype(np.float32)


MULAW = _mulaw_table()
ALAW = _alaw_table()


class _Resampler:
    """Streaming rational resampler (`up`/`down`), its output aligned with its input's timeline.

    Output sample `j` sits at input time `j * down / up`; it is computed from the zero-stuffed input
    filtered by a linear-phase FIR whose delay is compensated by looking ahead, so each output waits
    for a few input samples (under a millisecond here). Every output is computed by the same
    element-wise operations whatever the calls' sizes, hence chunking cannot change a bit of it.
    """

    def __init__(self, up: int, down: int) -> None:
        self._up, self._down = up, down
        count = up * _TAPS_PER_PHASE - 1  # odd: the delay is a whole number of samples
        self._delay = (count - 1) // 2
        cutoff = _CUTOFF / max(up, down)  # of the upsampled rate's Nyquist frequency
        offsets = np.arange(count) - self._delay
        taps = np.sinc(cutoff * offsets) * np.kaiser(count, _KAISER_BETA)
        taps *= up / taps.sum()  # zero-stuffing divides the level by `up`
        padded = np.zeros(up * _TAPS_PER_PHASE)
        padded[:count] = taps
        # branches[p, m] weighs input sample i - m for an output at upsampled position i * up + p.
        self._branches = padded.reshape(_TAPS_PER_PHASE, up).T.astype(np.float32).copy()
        self.reset()

    def reset(self) -> None:
        """Forgets all input: the next sample starts a new stream (with silence before it)."""
        history = _TAPS_PER_PHASE - 1
        self._buffer = np.zeros(history, dtype=np.float32)
        self._base = -history  # the input index of self._buffer[0]
        self._received = 0
        self._produced = 0

    def _ready(self, received: int) -> int:
        """How many outputs in all can be computed once `received` input samples are known."""
        last = received * self._up - 1 - self._delay  # the last upsampled position with its look-ahead
        return max(0, last // self._down + 1)

    def _emit(self, total: int) -> np.ndarray:
        """Computes outputs `_produced` to `total` from the buffer, then drops input no longer needed."""
        positions = np.arange(self._produced, total, dtype=np.int64) * self._down + self._delay
        phases = positions % self._up
        newest = positions // self._up - self._base
        weights = self._branches[phases]
        out = np.zeros(positions.size, dtype=np.float32)
        for back in range(_TAPS_PER_PHASE):
            out += weights[:, back] * self._buffer[newest - back]
        self._produced = total
        keep_from = (total * self._down + self._delay) // self._up - (_TAPS_PER_PHASE - 1)
        if keep_from > self._base:
            self._buffer = self._buffer[keep_from - self._base :]
            self._base = keep_from
        return out

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Takes input samples and returns every output sample they complete.

        Args:
            samples: Float32 samples at the input rate.

        Returns:
            Float32 samples at the output rate (possibly none).
        """
        self._buffer = np.concatenate((self._buffer, samples))
        self._received += samples.size
        return self._emit(self._ready(self._received))

    def flush(self) -> np.ndarray:
        """Ends the stream: the outputs up to the input's end, with silence after it, then a reset.

        Returns:
            The remaining float32 output samples.
        """
        total = -(-self._received * self._up // self._down)  # the outputs before the input's end
        needed = (max(total - 1, 0) * self._down + self._delay) // self._up + 1
        self._buffer = np.concatenate(
            (self._buffer, np.zeros(max(0, needed - self._received), dtype=np.float32))
        )
        out = self._emit(total) if total > self._produced else np.zeros(0, dtype=np.float32)
        self.reset()
        return out


class InputAudio:
    """Streaming converter for one session's input format."""

    def __init__(self, format_type: str, rate: int) -> None:
        """Sets up the decoder and resampler for one format.

        Args:
            format_type: `audio/pcm`, `audio/pcmu` or `audio/pcma`.
            rate: The input's sample rate: 24000 for `audio/pcm`, 8000 for G.711.

        Raises:
            ValueError: The format or its rate is not one handled here.
        """
        if format_type not in RATES:
            raise ValueError(f"audio format must be one of {', '.join(RATES)}, got {format_type!r}")
        if rate != RATES[format_type]:
            raise ValueError(f"audio rate for {format_type} must be {RATES[format_type]}, got {rate}")
        self.format_type = format_type
        self.rate = rate
        self._table = {"audio/pcmu": MULAW, "audio/pcma": ALAW}.get(format_type)
        divisor = np.gcd(rate, config.SAMPLE_RATE)
        self._resampler = _Resampler(config.SAMPLE_RATE // divisor, rate // divisor)
        self._pending = b""  # an odd byte of 16-bit PCM, waiting for its other half

    def seconds(self, byte_count: int) -> float:
        """How long `byte_count` bytes of this format last.

        Args:
            byte_count: A number of input bytes.

        Returns:
            Seconds of audio.
        """
        width = 2 if self._table is None else 1
        return byte_count / width / self.rate

    def _decode(self, raw: bytes) -> np.ndarray:
        """Bytes → float32 samples at the input rate (an odd PCM byte kept for the next call)."""
        if self._table is not None:
            return self._table[np.frombuffer(raw, dtype=np.uint8)]
        data = self._pending + raw
        whole = len(data) - len(data) % 2
        self._pending = data[whole:]
        return np.frombuffer(data, dtype="<i2", count=whole // 2).astype(np.float32) / 32768.0

    def feed(self, raw: bytes) -> np.ndarray:
        """Converts the next bytes of the stream.

        Args:
            raw: Input bytes, any length (an append's decoded base64).

        Returns:
            Float32 mono samples at 16 kHz, as many as the bytes so far complete.
        """
        return self._resampler.feed(self._decode(raw))

    def flush(self) -> np.ndarray:
        """Ends the stream (a turn or the session): what the filter still holds, then a fresh start.

        An odd PCM byte still waiting is dropped (half a sample). Between server-VAD turns there is no
        need to flush: the stream simply goes on.

        Returns:
            The last float32 samples at 16 kHz.
        """
        self._pending = b""
        return self._resampler.flush()

    def reset(self) -> None:
        """Drops everything held (after `input_audio_buffer.clear`)."""
        self._pending = b""
        self._resampler.reset()
