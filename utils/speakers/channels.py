"""Per-channel transcripts merged into one, in time order, each word and segment marked with its channel.

A call recording with one party per channel becomes one transcript in which every word says which
channel (0-based) it came from. The text is the channels' segments in order of their start, so a
sentence is never interleaved with another channel's words. A silent channel adds nothing.
"""

import dataclasses
from typing import Any

from utils.asr import plans
from utils.asr.records import Timestamps, Transcript


def _tagged(items: list[Any] | None, channel: int) -> list[Any] | None:
    """Records of one channel with `channel` set (None stays None)."""
    return None if items is None else [dataclasses.replace(item, channel=channel) for item in items]


def _merged(per_channel: list[list[Any] | None]) -> list[Any] | None:
    """Records of every channel in time order (by start, then channel); None when not computed."""
    if any(items is None for items in per_channel):
        return None
    every = (item for items in per_channel for item in items)
    return sorted(every, key=lambda item: (item.start, item.channel))


def merge_channels(transcripts: list[Transcript]) -> Transcript:
    """One transcript of several channels' transcripts.

    Args:
        transcripts: One per channel, in channel order, each with word and segment timestamps.

    Returns:
        The merged transcript: words, segments and chars in time order with their `channel`, the
        text of the segments in that order, every channel's speakers (when diarized), and how the
        channels were run (the attention of the longest plan any channel ran, `none` only when no
        channel reached the model; the most windows and the largest shared call of any channel;
        every fallback).
    """
    tagged = [
        Timestamps(
            word=_tagged(t.timestamps.word, channel),
            segment=_tagged(t.timestamps.segment, channel),
            char=_tagged(t.timestamps.char, channel),
        )
        for channel, t in enumerate(transcripts)
    ]
    timestamps = Timestamps(
        word=_merged([t.word for t in tagged]),
        segment=_merged([t.segment for t in tagged]),
        char=_merged([t.char for t in tagged]),
    )
    return Transcript(
        text=" ".join(segment.text for segment in timestamps.segment or []),
        attention=plans.longest_of([t.attention for t in transcripts]),
        timestamps=timestamps,
        fallbacks=[f"ch{channel}: {note}" for channel, t in enumerate(transcripts) for note in t.fallbacks],
        windows=max(t.windows for t in transcripts),
        batch=max(t.batch for t in transcripts),
        speakers=None
        if any(t.speakers is None for t in transcripts)
        else [speaker for t in transcripts for speaker in t.speakers],
        channels=len(transcripts),
    )
