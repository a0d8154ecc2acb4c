"""Speech synthesis with espeak-ng for the test model's corpus and for tests that need real speech.

espeak-ng writes 22.05 kHz 16-bit mono WAV to stdout; `synthesize` resamples it to the worker's 16 kHz
and returns float32 samples in [-1, 1]. Nothing touches the filesystem unless `write_wav` is asked to.
"""

import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
ESPEAK_BINARY = "espeak-ng"
ESPEAK_TIMEOUT_SECONDS = 30
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The ten digit words, zero to nine, in each language the multilingual test model speaks.
DIGIT_WORDS_BY_LANGUAGE = {
    "en": DIGIT_WORDS,
    "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
    "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
    "it": ("zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"),
}


def synthesize(text: str, voice: str = "en-us", speed: int = 150, pitch: int = 50) -> np.ndarray:
    """Speaks `text` with espeak-ng and returns 16 kHz mono float32 samples in [-1, 1].

    Args:
        text: What to say; passed on stdin, so it can never be taken for an option.
        voice: An espeak-ng voice, optionally with a variant (`en-gb+f3`). espeak-ng silently ignores
            an unknown variant but refuses an unknown voice.
        speed: Words per minute (espeak-ng `-s`, 80–450).
        pitch: Pitch adjustment (espeak-ng `-p`, 0–99).

    Returns:
        The samples, float32, 16 kHz mono.

    Raises:
        RuntimeError: espeak-ng failed (unknown voice, for one) or wrote something that is not the
            16-bit mono WAV it normally writes.
    """
    result = subprocess.run(
        [ESPEAK_BINARY, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdin", "--stdout"],
        input=text.encode(),
        capture_output=True,
        timeout=ESPEAK_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {message}")
    pcm, source_rate = _parse_streamed_wav(result.stdout)
    samples = pcm.astype(np.float32) / 32768.0
    if source_rate != SAMPLE_RATE:
        divisor = np.gcd(source_rate, SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // divisor, source_rate // divisor)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def _parse_streamed_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Reads espeak-ng's streamed WAV: its size fields are placeholders, so the data runs to the end.

    Args:
        data: The bytes espeak-ng wrote to stdout.

    Returns:
        The int16 samples and their sample rate.

    Raises:
        RuntimeError: The bytes are not 16-bit mono PCM WAV.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not write a WAV stream")
    offset = 12
    sample_rate = 0
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        chunk_size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        body = offset + 8
        if chunk_id == b"fmt ":
            audio_format, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if audio_format != 1 or channels != 1 or bits != 16:
                raise RuntimeError(f"espeak-ng wrote format {audio_format}, {channels} ch, {bits} bit")
        elif chunk_id == b"data":
            if not sample_rate:
                raise RuntimeError("espeak-ng's WAV stream has no fmt chunk before its data")
            payload = data[body:]
            return np.frombuffer(payload[: len(payload) // 2 * 2], dtype="<i2"), sample_rate
        offset = body + chunk_size + (chunk_size & 1)
    raise RuntimeError("espeak-ng's WAV stream has no data chunk")


def trim_silence(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Cuts the leading and trailing silence espeak-ng puts around speech.

    Args:
        samples: Mono float samples.
        threshold: Absolute amplitude below which a sample counts as silence.

    Returns:
        The samples from the first to the last one louder than `threshold` (empty if none is).
    """
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Writes mono float samples as a 16-bit PCM WAV file.

    Args:
        path: Where to write.
        samples: Mono float samples; values outside [-1, 1] are clipped.
        sample_rate: Samples per second recorded in the header.
    """
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
