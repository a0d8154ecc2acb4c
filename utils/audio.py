"""Decodes an audio (or audio-in-video) file to 16 kHz mono float32 with the ffmpeg binary.

ffmpeg writes raw float32 PCM to a pipe, which was the fastest path measured (in-process decoders were
10-30 % slower), into a growing buffer that becomes the sample array without a copy: no temporary WAV,
no conversion pass in Python, and peak memory about the size of the result (bench/bench_audio.py). It
only opens the given local file, only through allowlisted demuxers, only the first audio stream, for at
most the configured duration and time.
"""

import collections
import contextlib
import json
import logging
import math
import subprocess
import threading
from pathlib import Path

import numpy as np

import config
from utils import deadline
from utils.deadline import cap_to_job
from utils.errors import (
    AudioDecodeError,
    AudioTimeoutError,
    AudioTooLongError,
    EmptyAudioError,
    NoAudioStreamError,
)

log = logging.getLogger(__name__)

_BYTES_PER_SAMPLE = 4  # f32le
_READ_BYTES = 1 << 20
_CHECK_BLOCK_SAMPLES = 1 << 20


def ffmpeg_command(path: Path, max_seconds: float) -> list[str]:
    """Builds the ffmpeg argv that converts `path` to raw 16 kHz mono float32 (f32le) on stdout.

    Args:
        path: The local input file.
        max_seconds: Output is cut just after this duration, so over-long input is detected
            without decoding all of it.

    Returns:
        The argument vector.
    """
    return [
        config.FFMPEG_BINARY,
        "-nostdin",
        "-hide_banner",
        "-loglevel", "error",
        # Input side: local files only, allowlisted containers only (no playlists or network).
        "-protocol_whitelist", "file",
        "-format_whitelist", config.FFMPEG_DEMUXER_ALLOWLIST,
        "-i", f"file:{path}",
        # Output side: the first audio stream, mixed to mono, resampled, capped in length.
        "-map", "0:a:0",
        "-vn", "-sn", "-dn",
        "-ac", "1",
        "-ar", str(config.SAMPLE_RATE),
        "-t", f"{max_seconds + 1:.3f}",
        "-f", "f32le",
        "-acodec", "pcm_f32le",
        "pipe:1",
    ]  # fmt: skip


def _silence_non_finite(samples: np.ndarray) -> None:
    """Replaces NaN and infinite samples with silence, in place.

    A float file can carry them (one is enough to make the model emit nonsense for the whole item);
    ffmpeg passes them through. Blocks are checked one at a time, so a long item costs no second array.
    """
    replaced = 0
    for start in range(0, samples.size, _CHECK_BLOCK_SAMPLES):
        block = samples[start : start + _CHECK_BLOCK_SAMPLES]
        if not np.isfinite(block).all():
            bad = ~np.isfinite(block)
            replaced += int(bad.sum())
            block[bad] = 0.0
    if replaced:
        log.warning("replaced %d non-finite samples with silence", replaced)


def probe_seconds(path: Path) -> float | None:
    """Reads a media file's audio length from its headers with ffprobe, without decoding it.

    Args:
        path: The local file.

    Returns:
        The first audio stream's duration (else the container's), or None when ffprobe cannot tell.
    """
    command = [
        config.FFPROBE_BINARY,
        "-v", "error",
        "-protocol_whitelist", "file",
        "-format_whitelist", config.FFMPEG_DEMUXER_ALLOWLIST,
        "-select_streams", "a:0",
        "-show_entries", "stream=duration:format=duration",
        "-of", "json",
        f"file:{path}",
    ]  # fmt: skip
    try:
        found = subprocess.run(
            command, capture_output=True, timeout=cap_to_job(config.FFMPEG_TIMEOUT_SECONDS), check=False
        )
        report = json.loads(found.stdout or b"{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    candidates = [stream.get("duration") for stream in report.get("streams", [])]
    candidates.append(report.get("format", {}).get("duration"))
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _classify_failure(stderr_tail: str) -> AudioDecodeError:
    """Maps ffmpeg's error output to the most specific client-facing error."""
    if "matches no streams" in stderr_tail or "does not contain any stream" in stderr_tail:
        return NoAudioStreamError("the file has no audio stream")
    return AudioDecodeError(
        "the file could not be decoded as audio (corrupt, truncated or unsupported format)"
    )


def decode(path: Path, limit_seconds: float | None = None) -> np.ndarray:
    """Decodes a media file to mono float32 samples at `config.SAMPLE_RATE`.

    Args:
        path: The file, inside the job's temporary directory.
        limit_seconds: Decode only about this much (up to a second more, which tells the caller the
            audio goes on); None decodes all of it, up to `config.MAX_AUDIO_SECONDS`.

    Returns:
        Mono float32 samples, nominally in [-1, 1] (resampling can overshoot slightly).

    Raises:
        EmptyAudioError: The file has no bytes or decodes to no samples.
        NoAudioStreamError: The file is media without an audio stream.
        AudioDecodeError: ffmpeg cannot read it as audio.
        AudioTimeoutError: ffmpeg ran past `config.FFMPEG_TIMEOUT_SECONDS`.
        AudioTooLongError: The audio is longer than `config.MAX_AUDIO_SECONDS`.
    """
    if path.stat().st_size == 0:
        raise EmptyAudioError("the audio file is empty (0 bytes)")
    limit = (
        config.MAX_AUDIO_SECONDS if limit_seconds is None else min(limit_seconds, config.MAX_AUDIO_SECONDS)
    )
    command = ffmpeg_command(path, limit)
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stderr_tail: collections.deque[str] = collections.deque(maxlen=config.FFMPEG_STDERR_TAIL_LINES)
    # stderr is drained in a thread: a corrupt file can print enough to fill the pipe and stall ffmpeg.
    stderr_reader = threading.Thread(
        target=lambda: stderr_tail.extend(line.decode(errors="replace").rstrip() for line in process.stderr),
        daemon=True,
    )
    stderr_reader.start()
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        process.kill()

    # Within the job's time left, too: a job-deadline kill is reported as job_timeout (utils/deadline.py).
    timer = threading.Timer(cap_to_job(config.FFMPEG_TIMEOUT_SECONDS), kill_on_timeout)
    timer.start()
    # A large bytearray grows in place (realloc of an mmap'd block), so this costs ~1x the audio.
    pcm = bytearray()
    job = deadline.current()
    # A cancelled job kills its ffmpeg at once (the job's deadline then reports the cancellation).
    cancellation = job.on_cancel(process.kill) if job is not None else contextlib.nullcontext()
    try:
        with cancellation:
            while chunk := process.stdout.read(_READ_BYTES):
                pcm += chunk
            return_code = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        stderr_reader.join()
        process.stderr.close()

    if timed_out.is_set():
        raise AudioTimeoutError(f"audio conversion took longer than {config.FFMPEG_TIMEOUT_SECONDS:g} s")
    if return_code != 0:
        log.warning("ffmpeg exited with %s: %s", return_code, " | ".join(stderr_tail))
        raise _classify_failure("\n".join(stderr_tail))
    samples = np.frombuffer(pcm, dtype="<f4", count=len(pcm) // _BYTES_PER_SAMPLE)
    if samples.size == 0:
        raise EmptyAudioError("the audio decodes to no samples")
    _silence_non_finite(samples)
    duration = samples.size / config.SAMPLE_RATE
    if duration > config.MAX_AUDIO_SECONDS and limit_seconds is None:
        raise AudioTooLongError(
            f"the audio is longer than the {config.MAX_AUDIO_SECONDS:g} s limit "
            f"(read {duration:.0f} s before stopping)"
        )
    return samples
