"""Decodes an audio (or audio-in-video) file to 16 kHz mono float32 with the ffmpeg binary (or to one
array per channel, for transcripts per channel).

ffmpeg writes raw float32 PCM to a pipe, which was the fastest path measured (in-process decoders were
10-30 % slower), into a growing buffer that becomes the sample array without a copy: no temporary WAV,
no conversion pass in Python, and peak memory about the size of the result (bench/bench_audio.py). It
only opens the given local file, only through allowlisted demuxers, only the first audio stream, for at
most the configured duration and time.

ffprobe reads the stream's layout first (`probe`), which shapes the decode:
- Channels are mixed with equal weights, every channel counted (ffmpeg's own downmix gives the LFE
  channel weight 0, and a 7.1 file whose speech is on channel 4 would come out silent). Up to
  `config.MIX_MAX_CHANNELS` channels, the mix is made here, block by block, so that a channel in
  opposite polarity to the loudest one is flipped first: a stereo file whose right channel is the left
  inverted mixes to its speech, not to silence. More channels are mixed by ffmpeg's `pan` filter.
- Input below 16 kHz is cut into short frames before resampling: upsampling a 4096-sample packet of a
  1 Hz file would make one 260 MB frame (and ffmpeg hold several), so ffmpeg's memory follows the
  audio kept, not the header's sample rate.
"""

import collections
import contextlib
import fcntl
import json
import logging
import math
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import config
from utils.audio import helper_pool, limits
from utils.errors import (
    AudioDecodeError,
    AudioTimeoutError,
    AudioTooLongError,
    EmptyAudioError,
    NoAudioStreamError,
    TooManyChannelsError,
)
from utils.job import deadline
from utils.job.deadline import cap_to_job

log = logging.getLogger(__name__)

_BYTES_PER_SAMPLE = 4  # f32le
_READ_FRAMES = 1 << 18
_PIPE_BYTES = 1 << 20
_CHECK_BLOCK_SAMPLES = 1 << 20


@dataclass(frozen=True)
class StreamInfo:
    """What ffprobe tells of a file's first audio stream (None: it could not tell)."""

    seconds: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    # How long after the container's start the audio begins (a video's late-starting sound track).
    start_offset: float = 0.0

    @property
    def mixed_here(self) -> bool:
        """Whether ffmpeg hands over every channel, for `_mix` to mix (or to keep apart)."""
        return self.channels is not None and 1 < self.channels <= config.MIX_MAX_CHANNELS

    def check_separable(self) -> None:
        """Refuses a stream with more channels than are transcribed separately.

        Raises:
            TooManyChannelsError: More than `config.MAX_SEPARATE_CHANNELS` channels.
        """
        if self.channels is not None and self.channels > config.MAX_SEPARATE_CHANNELS:
            raise TooManyChannelsError(
                f'channels "separate" takes audio of at most {config.MAX_SEPARATE_CHANNELS} channels; '
                f'this audio has {self.channels}. Send channels "mix" for one transcript of all of them'
            )


def check_headers(stream: StreamInfo, size_bytes: int) -> None:
    """Refuses, before any decoding, a stream whose headers no real recording has (`utils.audio.limits`).

    Args:
        stream: The probed stream.
        size_bytes: The file's size.

    Raises:
        AudioDecodeError: A sample rate below `MIN_SAMPLE_RATE`, or a declared length out of all
            proportion to the file's size.
    """
    refused = limits.refusal(stream.seconds, stream.sample_rate, size_bytes)
    if refused is not None:
        raise AudioDecodeError(refused)


def _filters(stream: StreamInfo) -> list[str]:
    """The audio filters a stream needs before the resampler (see the module docstring)."""
    filters = []
    if stream.sample_rate is not None and stream.sample_rate < config.SAMPLE_RATE:
        samples = max(1, stream.sample_rate // config.UPSAMPLE_FRAMES_PER_SECOND)
        filters.append(f"asetnsamples=n={samples}:p=0")
    if stream.channels is not None and stream.channels > config.MIX_MAX_CHANNELS:
        weight = 1 / stream.channels
        filters.append("pan=mono|c0=" + "+".join(f"{weight:.6f}*c{i}" for i in range(stream.channels)))
    return filters


def ffmpeg_command(path: Path, max_seconds: float, stream: StreamInfo) -> list[str]:
    """Builds the ffmpeg argv that converts `path` to raw 16 kHz float32 (f32le) on stdout.

    Args:
        path: The local input file.
        max_seconds: Output is cut just after this duration, so over-long input is detected
            without decoding all of it.
        stream: The probed stream: every channel comes out when `stream.mixed_here`, else mono.

    Returns:
        The argument vector.
    """
    filters = _filters(stream)
    return [
        config.FFMPEG_BINARY,
        "-nostdin",
        "-hide_banner",
        "-loglevel", "error",
        # Input side: local files only, allowlisted containers only (no playlists or network).
        "-protocol_whitelist", "file",
        "-format_whitelist", config.FFMPEG_DEMUXER_ALLOWLIST,
        "-i", f"file:{path}",
        # Output side: the first audio stream, resampled, capped in length.
        "-map", "0:a:0",
        "-vn", "-sn", "-dn",
        *(["-af", ",".join(filters)] if filters else []),
        "-ac", str(stream.channels if stream.mixed_here else 1),
        "-ar", str(config.SAMPLE_RATE),
        "-t", f"{max_seconds + 1:.3f}",
        "-f", "f32le",
        "-acodec", "pcm_f32le",
        "pipe:1",
    ]  # fmt: skip


def _mix(block: np.ndarray) -> np.ndarray:
    """Mixes interleaved channels to mono with equal weights, after aligning their polarity.

    A channel whose correlation with the block's loudest channel is below
    `config.MIX_FLIP_CORRELATION` (the same signal inverted, or nearly) is flipped; uncorrelated
    channels are left alone, so independent speakers never change sign between blocks.

    Args:
        block: Samples shaped (frames, channels).

    Returns:
        Mono float32 samples, one per frame.
    """
    energy = np.einsum("ij,ij->j", block, block, dtype=np.float64)
    loudest = int(np.argmax(energy))
    correlation = np.einsum("ij,i->j", block, block[:, loudest], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = correlation / np.sqrt(energy * energy[loudest])
    signs = np.where(normalized < config.MIX_FLIP_CORRELATION, -1.0, 1.0) / block.shape[1]
    return block @ signs.astype(np.float32)


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


def _number(value: Any) -> float | None:
    """A finite, non-negative number from ffprobe's JSON, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def probe(path: Path) -> StreamInfo:
    """Reads a media file's first audio stream from its headers with ffprobe, without decoding it.

    Args:
        path: The local file.

    Returns:
        The stream's duration (else the container's), sample rate, channels and start offset; what
        ffprobe cannot tell (or a file it cannot read) is None.
    """
    command = [
        config.FFPROBE_BINARY,
        "-v", "error",
        "-protocol_whitelist", "file",
        "-format_whitelist", config.FFMPEG_DEMUXER_ALLOWLIST,
        "-select_streams", "a:0",
        # The first packet's time: some demuxers (Matroska) report a late stream as starting at 0.
        "-read_intervals", "%+#1",
        "-show_entries", "packet=pts_time:stream=duration,sample_rate,channels:format=duration,start_time",
        "-of", "json",
        f"file:{path}",
    ]  # fmt: skip
    try:
        found = subprocess.run(
            command, capture_output=True, timeout=cap_to_job(config.FFMPEG_TIMEOUT_SECONDS), check=False
        )
        report = json.loads(found.stdout or b"{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return StreamInfo()
    streams = report.get("streams") or [{}]
    stream, container = streams[0], report.get("format", {})
    seconds = _number(stream.get("duration"))
    rate, channels = _number(stream.get("sample_rate")), _number(stream.get("channels"))
    packets = report.get("packets") or [{}]
    stream_start, container_start = _number(packets[0].get("pts_time")), _number(container.get("start_time"))
    offset = 0.0
    if stream_start is not None:
        offset = max(0.0, stream_start - (container_start or 0.0))
    return StreamInfo(
        seconds=seconds if seconds is not None else _number(container.get("duration")),
        sample_rate=int(rate) if rate else None,
        channels=int(channels) if channels else None,
        start_offset=round(offset, 3),
    )


def _classify_failure(stderr_tail: str) -> AudioDecodeError:
    """Maps ffmpeg's error output to the most specific client-facing error."""
    if "matches no streams" in stderr_tail or "does not contain any stream" in stderr_tail:
        return NoAudioStreamError("the file has no audio stream")
    return AudioDecodeError(
        "the file could not be decoded as audio (corrupt, truncated or unsupported format)"
    )


def decode(
    path: Path, limit_seconds: float | None = None, stream: StreamInfo | None = None, separate: bool = False
) -> np.ndarray:
    """Decodes a media file to mono float32 samples at `config.SAMPLE_RATE`, or to one row per channel.

    Args:
        path: The file, inside the job's temporary directory.
        limit_seconds: Decode only about this much (up to a second more, which tells the caller the
            audio goes on); None decodes all of it, up to `config.MAX_AUDIO_SECONDS`.
        stream: The file's `probe`, when the caller has it (else it is probed here).
        separate: Keep the channels apart instead of mixing them.

    Returns:
        Float32 samples, nominally in [-1, 1] (resampling can overshoot slightly): mono, or with
        `separate` shaped (channels, samples), one row for mono audio.

    Raises:
        TooManyChannelsError: `separate` on audio of more than `config.MAX_SEPARATE_CHANNELS` channels.
        EmptyAudioError: The file has no bytes or decodes to no samples.
        NoAudioStreamError: The file is media without an audio stream.
        AudioDecodeError: ffmpeg cannot read it as audio, or its headers are refused (`check_headers`).
        AudioTimeoutError: ffmpeg ran past `config.FFMPEG_TIMEOUT_SECONDS`.
        AudioTooLongError: The audio is longer than `config.MAX_AUDIO_SECONDS`.
    """
    size = path.stat().st_size
    if size == 0:
        raise EmptyAudioError("the audio file is empty (0 bytes)")
    limit = (
        config.MAX_AUDIO_SECONDS if limit_seconds is None else min(limit_seconds, config.MAX_AUDIO_SECONDS)
    )
    stream = probe(path) if stream is None else stream
    check_headers(stream, size)
    if separate:
        stream.check_separable()
    command = ffmpeg_command(path, limit, stream)
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    if stream.mixed_here:
        # A deeper pipe lets ffmpeg decode on while a block is mixed here (Linux; best effort).
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=config.FFMPEG_STDERR_TAIL_LINES)
    # stderr is drained in a thread: a corrupt file can print enough to fill the pipe and stall ffmpeg.
    # ffmpeg names its input in its messages: the job's file stays out of the log as "<input>".
    shown_path = str(path)
    stderr_reader = threading.Thread(
        target=lambda: stderr_tail.extend(
            line.decode(errors="replace").rstrip().replace(shown_path, "<input>") for line in process.stderr
        ),
        daemon=True,
    )
    stderr_reader.start()
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        process.kill()

    # Within the job's time left, too: a job-deadline kill is reported as job_timeout (utils/job/deadline.py).
    timer = threading.Timer(cap_to_job(config.FFMPEG_TIMEOUT_SECONDS), kill_on_timeout)
    timer.start()
    # A large bytearray grows in place (realloc of an mmap'd block), so this costs ~1x the audio.
    channels = stream.channels if stream.mixed_here else 1
    pcm = [bytearray() for _ in range(channels if separate else 1)]
    job = deadline.current()
    # A cancelled job kills its ffmpeg at once (the job's deadline then reports the cancellation).
    cancellation = job.on_cancel(process.kill) if job is not None else contextlib.nullcontext()
    try:
        with cancellation:
            while chunk := process.stdout.read(_READ_FRAMES * channels * _BYTES_PER_SAMPLE):
                _take(chunk, pcm, channels, separate)
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
    return _samples(pcm, separate, limit_seconds)


def _take(chunk: bytes, pcm: list[bytearray], channels: int, separate: bool) -> None:
    """Adds a block of interleaved f32le frames: as it is (mono), mixed, or split into its channels."""
    if channels == 1:
        pcm[0] += chunk
        return
    frame_bytes = channels * _BYTES_PER_SAMPLE
    frames = np.frombuffer(chunk, dtype="<f4", count=len(chunk) // frame_bytes * channels)
    frames = frames.reshape(-1, channels)
    if separate:
        for channel, kept in enumerate(pcm):
            kept += frames[:, channel].tobytes()
    else:
        pcm[0] += _mix(frames).tobytes()


def _samples(pcm: list[bytearray], separate: bool, limit_seconds: float | None) -> np.ndarray:
    """The decoded rows as one array, checked: not empty, finite, not over the length limit."""
    rows = [np.frombuffer(kept, dtype="<f4", count=len(kept) // _BYTES_PER_SAMPLE) for kept in pcm]
    samples = np.stack(rows) if separate else rows[0]
    del rows, pcm
    if samples.size == 0:
        raise EmptyAudioError("the audio decodes to no samples")
    _silence_non_finite(samples.reshape(-1))
    duration = samples.shape[-1] / config.SAMPLE_RATE
    if duration > config.MAX_AUDIO_SECONDS and limit_seconds is None:
        raise AudioTooLongError(
            f"the audio is longer than the {config.MAX_AUDIO_SECONDS:g} s limit "
            f"(read {duration:.0f} s before stopping)"
        )
    return samples


def decode_small(path: Path, limit_seconds: float) -> tuple[np.ndarray, StreamInfo]:
    """Reads and decodes a small file in one pass, in a decoder helper when one is free (no process
    start), else with ffprobe and ffmpeg; its channels are mixed as `decode` mixes them.

    Args:
        path: The file, inside the job's temporary directory.
        limit_seconds: Decode about this much (up to a second more, which tells the audio goes on).

    Returns:
        Mono float32 samples, and the stream's layout (its start offset shifts the times).

    Raises:
        WorkerError: What `decode` raises.
    """
    size = path.stat().st_size
    if size == 0:
        raise EmptyAudioError("the audio file is empty (0 bytes)")
    answer = helper_pool.pool.decode(path, min(limit_seconds, config.MAX_AUDIO_SECONDS))
    stream = StreamInfo(**answer.stream) if answer is not None and answer.stream else None
    if answer is None or answer.pcm is None:
        stream = stream or probe(path)
        return decode(path, limit_seconds, stream), stream
    check_headers(stream or StreamInfo(), size)  # the helper refuses them too (in its own settings)
    pcm = [bytearray()]
    block = _READ_FRAMES * answer.channels * _BYTES_PER_SAMPLE
    for start in range(0, len(answer.pcm), block):
        _take(answer.pcm[start : start + block], pcm, answer.channels, separate=False)
    return _samples(pcm, False, limit_seconds), stream
