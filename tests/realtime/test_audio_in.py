"""InputAudio: OpenAI's live formats decoded and resampled to 16 kHz, the same however they are split."""

import warnings

import numpy as np
import pytest

from utils.realtime import audio_in
from utils.realtime.audio_in import InputAudio

OUT_RATE = 16_000


def tone(frequency: float, rate: int, seconds: float = 1.0, level: float = 0.5) -> np.ndarray:
    """A sine at `rate`, float64 in [-level, level]."""
    return level * np.sin(2 * np.pi * frequency * np.arange(int(rate * seconds)) / rate)


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples as 16-bit little-endian PCM."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def encode_g711(samples: np.ndarray, table: np.ndarray) -> bytes:
    """Each sample as the code whose decoded value is nearest (a test-side encoder, brute force)."""
    codes = np.abs(samples[:, None] - table[None, :].astype(np.float64)).argmin(axis=1)
    return codes.astype(np.uint8).tobytes()


def converted(converter: InputAudio, raw: bytes) -> np.ndarray:
    """The whole stream at once, flushed."""
    return np.concatenate((converter.feed(raw), converter.flush()))


def peak_hz(samples: np.ndarray) -> float:
    """The strongest frequency of 16 kHz samples."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * OUT_RATE / samples.size)


def level_db(samples: np.ndarray, reference: float) -> float:
    """RMS level relative to a sine of amplitude `reference`."""
    return float(20 * np.log10(np.sqrt(np.mean(samples**2)) / (reference / np.sqrt(2)) + 1e-12))


@pytest.mark.parametrize("frequency", [200.0, 440.0, 1000.0, 3000.0, 5500.0])
def test_pcm_24k_tone_keeps_frequency_level_and_timing(frequency: float) -> None:
    out = converted(InputAudio("audio/pcm", 24_000), pcm16(tone(frequency, 24_000)))
    assert out.dtype == np.float32
    assert out.size == OUT_RATE
    assert abs(peak_hz(out) - frequency) <= 1.0
    assert abs(level_db(out[400:-400], 0.5)) < 0.3
    # Aligned with the input's timeline: no delay from the filter.
    expected = tone(frequency, OUT_RATE)
    assert np.max(np.abs(out[100:-100] - expected[100:-100])) < 0.005


def test_pcm_24k_above_16k_nyquist_is_not_aliased() -> None:
    # An 11 kHz tone would fold to 5 kHz at 16 kHz without the low-pass.
    out = converted(InputAudio("audio/pcm", 24_000), pcm16(tone(11_000, 24_000)))
    assert level_db(out[400:-400], 0.5) < -50


@pytest.mark.parametrize(
    ("format_type", "table"), [("audio/pcmu", audio_in.MULAW), ("audio/pcma", audio_in.ALAW)]
)
def test_g711_8k_tone_is_upsampled_without_images(format_type: str, table: np.ndarray) -> None:
    out = converted(InputAudio(format_type, 8_000), encode_g711(tone(1000, 8_000), table))
    assert out.size == OUT_RATE
    assert abs(peak_hz(out) - 1000) <= 1.0
    assert abs(level_db(out[400:-400], 0.5)) < 0.5
    # Upsampling by zero-stuffing leaves an image at 8000 - 1000 Hz unless it is filtered out.
    spectrum = np.abs(np.fft.rfft(out[400:-400] * np.hanning(out.size - 800)))
    bins = np.fft.rfftfreq(out.size - 800, 1 / OUT_RATE)
    image = spectrum[np.abs(bins - 7000) < 50].max()
    assert 20 * np.log10(image / spectrum.max()) < -50


def test_mulaw_table_known_values() -> None:
    # G.711 μ-law: 0xFF and 0x7F are the two zeros, 0x00 and 0x80 the extremes.
    values = np.rint(audio_in.MULAW * 32768).astype(int)
    assert values[0xFF] == 0
    assert values[0x7F] == 0
    assert values[0x00] == -32124
    assert values[0x80] == 32124
    assert values[0xF0] == 120
    assert values[0x70] == -120
    assert values[0xEF] == 132
    assert values[0x8F] == 16764
    assert np.all(np.diff(values[0x80:0x100]) < 0)  # one half of the codes is monotonic


def test_alaw_table_known_values() -> None:
    # G.711 A-law: 0xD5/0x55 are the smallest magnitudes, 0xAA/0x2A the largest (even bits inverted).
    values = np.rint(audio_in.ALAW * 32768).astype(int)
    assert values[0xD5] == 8
    assert values[0x55] == -8
    assert values[0xAA] == 32256
    assert values[0x2A] == -32256
    assert values[0xD4] == 24
    assert values[0xC5] == 264
    assert len(set(values.tolist())) == 256


def test_tables_match_the_standard_library_decoder_where_it_still_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # gone in Python 3.13
    codes = bytes(range(256))
    mulaw = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2")
    alaw = np.frombuffer(audioop.alaw2lin(codes, 2), dtype="<i2")
    assert np.array_equal(np.rint(audio_in.MULAW * 32768), mulaw)
    assert np.array_equal(np.rint(audio_in.ALAW * 32768), alaw)


@pytest.mark.parametrize(
    ("format_type", "rate"), [("audio/pcm", 24_000), ("audio/pcmu", 8_000), ("audio/pcma", 8_000)]
)
def test_output_is_identical_however_the_bytes_are_split(format_type: str, rate: int) -> None:
    rng = np.random.default_rng(7)
    width = 2 if format_type == "audio/pcm" else 1
    raw = rng.integers(0, 256, size=rate * width * 2, dtype=np.uint8).tobytes()  # 2 s of noise
    whole = converted(InputAudio(format_type, rate), raw)
    pieces = InputAudio(format_type, rate)
    parts, position = [], 0
    while position < len(raw):
        size = int(rng.choice([1, 2, 3, 5, 7, 160, 481, 4801]))
        parts.append(pieces.feed(raw[position : position + size]))
        position += size
    parts.append(pieces.flush())
    assert np.array_equal(np.concatenate(parts), whole)
    assert whole.size == 2 * OUT_RATE


def test_odd_trailing_pcm_byte_waits_for_its_other_half() -> None:
    raw = pcm16(tone(440, 24_000, seconds=0.1))
    converter = InputAudio("audio/pcm", 24_000)
    first = converter.feed(raw[:1001])
    second = converter.feed(raw[1001:])
    reference = InputAudio("audio/pcm", 24_000).feed(raw)
    assert np.array_equal(np.concatenate((first, second)), reference)
    # One lone byte makes no sample.
    assert InputAudio("audio/pcm", 24_000).feed(b"\x01").size == 0


def test_reset_forgets_held_audio_and_starts_a_new_stream() -> None:
    raw = pcm16(tone(440, 24_000, seconds=0.5))
    converter = InputAudio("audio/pcm", 24_000)
    converter.feed(pcm16(tone(3000, 24_000, seconds=0.3)) + b"\x7f")
    converter.reset()
    assert np.array_equal(converted(converter, raw), converted(InputAudio("audio/pcm", 24_000), raw))


def test_flush_ends_the_stream_and_the_next_feed_starts_afresh() -> None:
    raw = pcm16(tone(440, 24_000, seconds=0.25))
    converter = InputAudio("audio/pcm", 24_000)
    first = converted(converter, raw)
    assert first.size == 4000  # all of 0.25 s, the filter's look-ahead included
    assert np.array_equal(converted(converter, raw), first)
    assert converter.flush().size == 0


def test_seconds_counts_bytes_of_the_format() -> None:
    assert InputAudio("audio/pcm", 24_000).seconds(48_000) == 1.0
    assert InputAudio("audio/pcmu", 8_000).seconds(4_000) == 0.5


@pytest.mark.parametrize(
    ("format_type", "rate"),
    [
        ("audio/pcm", 16_000),
        ("audio/pcm", 8_000),
        ("audio/pcmu", 16_000),
        ("audio/pcma", 24_000),
        ("audio/wav", 24_000),
    ],
)
def test_formats_and_rates_not_handled_are_refused(format_type: str, rate: int) -> None:
    with pytest.raises(ValueError, match="audio (format|rate)"):
        InputAudio(format_type, rate)
