"""Speech clips for tests: espeak-ng digit words through the real ffmpeg, as files or base64."""

import base64
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np

import config
from tools import synth

VOICE = "en-us"  # a training voice: these tests check the pipeline, tests/asr/test_model.py the model
RATE = config.SAMPLE_RATE


def speech(words: str, voice: str = VOICE, speed: int = 150) -> np.ndarray:
    """Spoken digit words with a little silence around them, as 16 kHz float32."""
    pad = np.zeros(int(0.3 * RATE), dtype=np.float32)
    return np.concatenate([pad, synth.synthesize(words, voice=voice, speed=speed), pad])


def encode(samples: np.ndarray, path: Path, *ffmpeg_args: str) -> Path:
    """Writes `samples` as WAV, then re-encodes it with ffmpeg into `path` with `ffmpeg_args`."""
    wav = path.with_suffix(".source.wav")
    synth.write_wav(wav, samples)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), *ffmpeg_args, str(path)],
        check=True,
    )
    wav.unlink()
    return path


def b64(path: Path) -> str:
    """A file's bytes as base64 text."""
    return base64.b64encode(path.read_bytes()).decode("ascii")


# A voice and a phrase of digits per language (the bundled multilingual model knows the digit words of these
# five); each phrase is long enough for the language detector to be sure of it.
PHRASES = {
    "en": ("en-us", "seven four two nine"),
    "de": ("de", "fünf zwei neun eins sieben"),
    "fr": ("fr-fr", "cinq deux neuf un trois"),
    "es": ("es", "cinco dos nueve uno siete"),
    "it": ("it", "cinque due nove uno sette"),
}


def phrase_clips(directory: Path) -> dict[str, str]:
    """Each language's phrase (`PHRASES`) spoken, encoded as FLAC in `directory`, as base64."""
    return {
        code: b64(encode(speech(words, voice), directory / f"{code}.flac"))
        for code, (voice, words) in PHRASES.items()
    }


def float_wav(samples: np.ndarray, path: Path) -> Path:
    """Writes samples as a 32-bit float WAV, bit for bit (NaN and infinities included)."""
    raw = path.with_suffix(".f32")
    raw.write_bytes(samples.astype("<f4").tobytes())
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "f32le", "-ar", str(config.SAMPLE_RATE)]
        + ["-ac", "1", "-i", str(raw), "-c:a", "pcm_f32le", str(path)],
        check=True,
    )
    return path


def one_hertz_wav(path: Path, hours: float) -> Path:
    """A 16-bit WAV whose header declares a 1 Hz sample rate: a few kB that decode to hours."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(1)
        out.writeframes((np.arange(int(hours * 3600)) % 64 * 100).astype("<i2").tobytes())
    return path


def crafted_wav(path: Path, format_tag: int, bits_per_sample: int) -> Path:
    """A WAV with a hand-written header whose audio stream has no decoder: an unknown format tag
    (0x9999), or PCM of 0 bits per sample; 4 kB of bytes follow."""
    block = max(1, bits_per_sample // 8)
    fmt = struct.pack("<HHIIHH", format_tag, 1, RATE, RATE * block, block, bits_per_sample)
    data = bytes(range(256)) * 16
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    body = b"WAVE" + chunks
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def channels_file(tracks: list[np.ndarray], path: Path, *ffmpeg_args: str) -> Path:
    """Interleaves equal-length 16 kHz tracks into one multichannel file encoded by ffmpeg."""
    raw = path.with_suffix(".f32")
    raw.write_bytes(np.stack(tracks, axis=1).astype("<f4").tobytes())
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE)]
        + ["-ac", str(len(tracks)), "-i", str(raw), *ffmpeg_args, str(path)],
        check=True,
    )
    raw.unlink()
    return path
