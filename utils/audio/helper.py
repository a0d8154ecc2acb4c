"""A long-lived decoder process: reads small audio files with FFmpeg's libraries (PyAV) and answers their
stream layout and their samples at 16 kHz in one pass, so that a short job pays no process start.

Run by `utils.audio.helper_pool` as `python -m utils.audio.helper`; it never imports torch. One request
per line on stdin, `{"path", "limit"}`; each answer is one JSON line on stdout, followed by the raw
float32 samples (interleaved channels, as ffmpeg's f32le pipe gives them) when `status` is "ok".

Its first line, before any request, is `{"status": "ready"}`: a helper that dies before it could not
start at all (PyAV missing), one that dies after it was killed by a file.

The file is opened as ffmpeg is: the file protocol only and the allowlisted demuxers only. Anything
this path does not cover as the ffmpeg program does (a file it cannot read or decode, whatever the
library raises, no audio stream or none with a decoder, rates below `FAST_DECODE_MIN_RATE` whose
upsampled frames would be huge, more than `FAST_DECODE_MAX_CHANNELS` channels, whose samples would cross
the pipe unmixed, headers that `utils.audio.limits` refuses) answers "fallback" with what it learnt of
the stream, and the worker runs ffmpeg itself (or refuses the headers), so every error and edge stays the
ffmpeg program's.
"""

import json
import os
import sys
from typing import Any, BinaryIO

import av

import config
from utils.audio import limits

_BYTES_PER_SAMPLE = 4


def _seconds(value: Any, time_base: Any) -> float | None:
    """A stream time in seconds, or None when unknown."""
    return float(value * time_base) if value is not None and time_base is not None else None


def _stream_fields(container: Any, stream: Any, first_pts: float | None) -> dict[str, Any]:
    """The stream's layout, as `utils.audio.decoding.probe` reads it with ffprobe."""
    context = stream.codec_context
    seconds = _seconds(stream.duration, stream.time_base)
    if seconds is None and container.duration is not None:
        seconds = container.duration / av.time_base
    container_start = (container.start_time or 0) / av.time_base
    offset = max(0.0, first_pts - container_start) if first_pts is not None else 0.0
    return {
        "seconds": seconds,
        "sample_rate": context.sample_rate or None,
        "channels": context.layout.nb_channels or None,
        "start_offset": round(offset, 3),
    }


def decode(path: str, limit: float) -> tuple[dict[str, Any], bytes]:
    """Decodes one file up to `limit` seconds (and one more, which tells the caller it goes on).

    Args:
        path: The local file.
        limit: Seconds of output wanted.

    Returns:
        The answer's header and its samples (empty for a fallback).
    """
    options = {"protocol_whitelist": "file", "format_whitelist": config.FFMPEG_DEMUXER_ALLOWLIST}
    with av.open(f"file:{path}", options=options) as container:
        if not container.streams.audio:
            return {"status": "fallback", "reason": "no audio stream", "stream": None}, b""
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # an unknown format tag, or 0 bits per sample: no decoder
            return {"status": "fallback", "reason": "no decoder", "stream": None}, b""
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.layout.nb_channels
        fields = _stream_fields(container, stream, None)
        if limits.refusal(fields["seconds"], fields["sample_rate"], os.path.getsize(path)) is not None:
            return {"status": "fallback", "reason": "refused", "stream": fields}, b""
        if (
            not rate
            or rate < config.FAST_DECODE_MIN_RATE
            or not 1 <= channels <= config.FAST_DECODE_MAX_CHANNELS
        ):
            return {"status": "fallback", "reason": "layout", "stream": fields}, b""
        kept = channels
        layout = stream.codec_context.layout if kept > 1 else "mono"
        resampler = av.AudioResampler(format="flt", layout=layout, rate=config.SAMPLE_RATE)
        wanted = int((limit + 1) * config.SAMPLE_RATE) * kept * _BYTES_PER_SAMPLE
        pcm = bytearray()
        first_pts = None
        for packet in container.demux(stream):
            if first_pts is None and packet.pts is not None:
                first_pts = _seconds(packet.pts, packet.time_base)
            for frame in packet.decode():
                for out in resampler.resample(frame):
                    pcm += out.to_ndarray().tobytes()
            if len(pcm) >= wanted:
                break
        else:
            for out in resampler.resample(None):
                pcm += out.to_ndarray().tobytes()
        del pcm[wanted:]
        header = {"status": "ok", "channels": kept, "bytes": len(pcm)}
        return {**header, "stream": _stream_fields(container, stream, first_pts)}, bytes(pcm)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Says it is ready, then answers requests until stdin closes (the worker exited or replaced it).

    Args:
        requests: Request lines.
        answers: Where answers go.
    """
    answers.write(json.dumps({"status": "ready"}).encode() + b"\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        try:
            header, payload = decode(request["path"], float(request["limit"]))
        except Exception as error:  # noqa: BLE001 (any failure on a file: the ffmpeg program decides)
            header, payload = {"status": "fallback", "reason": type(error).__name__, "stream": None}, b""
        answers.write(json.dumps(header).encode() + b"\n" + payload)
        answers.flush()


if __name__ == "__main__":
    av.logging.set_level(None)  # libav's per-packet complaints; the worker reads only the answers
    serve(sys.stdin.buffer, sys.stdout.buffer)
