"""Voice-activity detection (`vad: true`): only speech goes to the model, and every time stays on the
original audio's timeline.

Silero VAD (`silero-vad`, its weights shipped in the package) finds the speech regions; each is padded
by `VAD_PAD_SECONDS` and regions closer than `VAD_MIN_SILENCE_SECONDS` are merged. The regions are
joined with `VAD_GAP_SECONDS` of silence between them (so that the model hears a pause, not a splice)
into one shorter row, which is transcribed like any other; the transcript's times are then mapped back.
Audio without speech gives an empty transcript without a model call: no words invented in silence or
noise. The diarizer, when asked for, still hears the whole audio.

The same detector gives each segment its `no_speech_prob` when asked (`with_no_speech`), with or
without `vad`.
"""

import bisect
import dataclasses
import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

import config
from utils.asr import plans
from utils.asr.records import Segment, Timestamps, Transcript

_lock = threading.Lock()  # the model keeps state between chunks: one detection at a time
# Loudness is judged per 32 ms frame (Silero's own step), and a second around loud frames is kept.
_FRAME_SAMPLES = 512
_MARGIN_SECONDS = 1.0
# Segments are scored in pieces of at most 8 s, 64 pieces at once: Silero steps through a batch as fast
# as through one row (about 800x real time instead of 50-100x on one core).
_PIECE_SECONDS = 8
_PIECES_PER_BATCH = 64


@dataclass(frozen=True)
class SpeechMap:
    """A row's speech regions, joined into one shorter row, and how to map its times back."""

    # Regions of the original row, in samples: [(start, end), ...], in order.
    regions: tuple[tuple[int, int], ...]
    # The joined row: the regions with `VAD_GAP_SECONDS` of silence between them.
    joined: np.ndarray
    # Where each region starts in the joined row, in samples.
    joined_starts: tuple[int, ...]

    @property
    def speech_seconds(self) -> float:
        """Seconds of speech found."""
        return sum(end - start for start, end in self.regions) / config.SAMPLE_RATE

    def to_original(self, seconds: float) -> float:
        """Maps a time of the joined row to the original row (a time in a gap goes to its region's end).

        Args:
            seconds: A time in the joined row.

        Returns:
            The same moment in the original audio.
        """
        sample = seconds * config.SAMPLE_RATE
        region = max(0, bisect.bisect_right(self.joined_starts, sample) - 1)
        start, end = self.regions[region]
        return min(start + sample - self.joined_starts[region], end) / config.SAMPLE_RATE

    def restore(self, transcript: Transcript) -> Transcript:
        """A transcript of the joined row, on the original row's timeline.

        Args:
            transcript: What the model made of `joined`.

        Returns:
            The transcript with every time mapped back and `speech_seconds` set.
        """
        timestamps = transcript.timestamps.remapped(self.to_original)
        return dataclasses.replace(
            transcript, timestamps=timestamps, speech_seconds=round(self.speech_seconds, 3)
        )


@functools.cache
def silero_model() -> Any:
    """Silero VAD's model, loaded once (its JIT file ships in the package); live turn detection shares it."""
    import torch

    threads = torch.get_num_threads()
    from silero_vad import load_silero_vad

    model = load_silero_vad()
    torch.set_num_threads(threads)  # importing silero_vad sets one torch thread for the whole process
    return model


def sounding_spans(samples: np.ndarray) -> list[tuple[int, int]]:
    """The stretches louder than `VAD_SILENCE_DBFS`, with a second of margin: all Silero needs to hear.

    Silero steps through the audio 32 ms at a time (about 70x real time on one CPU core), so the
    near-silence around sparse speech is left out before it runs (a vectorized pass, milliseconds an hour).

    Args:
        samples: Mono float32 samples.

    Returns:
        `(start, end)` sample ranges, in order, not overlapping.
    """
    frame = _FRAME_SAMPLES
    frames = np.pad(samples, (0, -samples.size % frame)).reshape(-1, frame).astype(np.float64)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 10 ** (config.VAD_SILENCE_DBFS / 20)
    margin = int(_MARGIN_SECONDS * config.SAMPLE_RATE / frame)
    kept = np.convolve(loud, np.ones(2 * margin + 1), mode="same") > 0  # loud frames and their margin
    edges = np.flatnonzero(np.diff(np.concatenate(([0], kept.astype(np.int8), [0]))))
    return [
        (int(start) * frame, min(samples.size, int(end) * frame))
        for start, end in zip(edges[::2], edges[1::2], strict=True)
    ]


def speech_regions(samples: np.ndarray) -> list[tuple[int, int]]:
    """The speech in a 16 kHz row, padded and merged across short pauses.

    Args:
        samples: Mono float32 samples.

    Returns:
        `(start, end)` sample ranges, in order, not overlapping; empty when there is no speech.
    """
    import torch
    from silero_vad import get_speech_timestamps

    rate = config.SAMPLE_RATE
    found = []
    with _lock, torch.inference_mode():
        for offset, end in sounding_spans(samples):
            span = torch.from_numpy(np.ascontiguousarray(samples[offset:end]))
            for region in get_speech_timestamps(
                span,
                silero_model(),
                threshold=config.VAD_THRESHOLD,
                sampling_rate=rate,
                min_speech_duration_ms=int(config.VAD_MIN_SPEECH_SECONDS * 1000),
                min_silence_duration_ms=int(config.VAD_MIN_SILENCE_SECONDS * 1000),
                speech_pad_ms=0,
            ):
                found.append({"start": offset + region["start"], "end": offset + region["end"]})
    pad = int(config.VAD_PAD_SECONDS * rate)
    merged: list[tuple[int, int]] = []
    for region in found:
        start, end = max(0, region["start"] - pad), min(samples.size, region["end"] + pad)
        if merged and start <= merged[-1][1] + int(config.VAD_MIN_SILENCE_SECONDS * rate):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def speech_map(samples: np.ndarray) -> SpeechMap:
    """Finds a row's speech and joins it into one shorter row.

    Args:
        samples: Mono float32 samples.

    Returns:
        The map; its `regions` are empty (and `joined` too) when there is no speech.
    """
    regions = speech_regions(samples)
    gap = np.zeros(int(config.VAD_GAP_SECONDS * config.SAMPLE_RATE), dtype=np.float32)
    pieces, starts, at = [], [], 0
    for index, (start, end) in enumerate(regions):
        if index:
            pieces.append(gap)
            at += gap.size
        starts.append(at)
        pieces.append(samples[start:end])
        at += end - start
    joined = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return SpeechMap(tuple(regions), joined, tuple(starts))


def silent(kinds: frozenset[str]) -> Transcript:
    """The transcript of audio without speech: no text, no words, nothing heard.

    Args:
        kinds: The timestamp kinds the job asked for (each is an empty list).

    Returns:
        The empty transcript, with `speech_seconds` 0.
    """
    empty = {kind: [] for kind in ("word", "segment", "char") if kind in kinds}
    return Transcript(text="", attention=plans.NONE, timestamps=Timestamps(**empty), speech_seconds=0.0)


def _pieces(samples: np.ndarray, spans: list[tuple[float, float]]) -> list[tuple[int, np.ndarray]]:
    """The audio of each span (seconds) in pieces of at most `_PIECE_SECONDS`, silent pieces left out."""
    rate = config.SAMPLE_RATE
    length = _PIECE_SECONDS * rate
    found = []
    for index, (start, end) in enumerate(spans):
        first = min(max(0, int(start * rate)), max(0, samples.size - _FRAME_SAMPLES))
        last = min(samples.size, max(int(end * rate), first + _FRAME_SAMPLES))
        for at in range(first, last, length):
            piece = samples[at : min(at + length, last)]
            if sounding_spans(piece):  # quieter than VAD_SILENCE_DBFS throughout: no speech to find
                found.append((index, piece))
    return found


def no_speech_probabilities(samples: np.ndarray, spans: list[tuple[float, float]]) -> list[float]:
    """How sure Silero is that each span holds no speech: 1 - the highest speech probability it gives
    any 32 ms frame of the span (1.0 for a span quieter than `VAD_SILENCE_DBFS` throughout).

    Args:
        samples: The mono 16 kHz row the spans are times of.
        spans: `(start, end)` in seconds.

    Returns:
        One value in [0, 1] per span, rounded to 4 places.
    """
    import torch

    pieces = _pieces(samples, spans)
    best = [0.0] * len(spans)
    with _lock, torch.inference_mode():
        for at in range(0, len(pieces), _PIECES_PER_BATCH):
            batch = pieces[at : at + _PIECES_PER_BATCH]
            longest = max(piece.size for _, piece in batch)
            stacked = np.zeros((len(batch), longest + -longest % _FRAME_SAMPLES), dtype=np.float32)
            for row, (_, piece) in enumerate(batch):
                stacked[row, : piece.size] = piece  # zeros after a short piece: silence, never the maximum
            highest = silero_model().audio_forward(torch.from_numpy(stacked), config.SAMPLE_RATE).amax(dim=1)
            for (index, _), value in zip(batch, highest.tolist(), strict=True):
                best[index] = max(best[index], value)
    return [round(min(max(1.0 - value, 0.0), 1.0), 4) for value in best]


def with_no_speech(transcript: Transcript, samples: np.ndarray) -> Transcript:
    """A transcript whose segments carry `no_speech_prob` (see `no_speech_probabilities`).

    Args:
        transcript: A transcript of `samples`, its times on that row's timeline.
        samples: The mono 16 kHz row.

    Returns:
        The transcript with its segments scored (unchanged without segments).
    """
    segments: list[Segment] | None = transcript.timestamps.segment
    if not segments:
        return transcript
    values = no_speech_probabilities(samples, [(segment.start, segment.end) for segment in segments])
    scored = [dataclasses.replace(s, no_speech_prob=v) for s, v in zip(segments, values, strict=True)]
    return dataclasses.replace(
        transcript, timestamps=dataclasses.replace(transcript.timestamps, segment=scored)
    )
