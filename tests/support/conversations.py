"""Conversations for the speaker tests: espeak-ng voices taking turns, the turn times known exactly.

The voices are voice+variant pairs that neither bundled model heard in training (both trainers hold
out the same pairs), each with a pitch of its own.
"""

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools import synth

RATE = synth.SAMPLE_RATE
# (voice, pitch): held out from the training of both bundled models.
VOICES = (("en-us+m1", 35), ("en-gb+f1", 70), ("en-gb-x-rp+david", 50))


@dataclass(frozen=True)
class Turn:
    """One speaker's turn: who, what, and when (seconds)."""

    speaker: int
    words: str
    start: float
    end: float


def conversation(
    turns: list[tuple[int, str]],
    pause: float = 0.7,
    overlap: float = 0.0,
    lead: float = 0.4,
    voices: tuple[tuple[str, int], ...] = VOICES,
) -> tuple[np.ndarray, list[Turn]]:
    """Speaks `turns` one after another (index into `voices`, digit words).

    Args:
        turns: `(speaker, words)` in order.
        pause: Silence between turns.
        overlap: Instead of a pause, each turn starts this long before the previous one ends.
        lead: Silence before the first turn and after the last.
        voices: `(espeak-ng voice, pitch)` of each speaker.

    Returns:
        16 kHz float32 samples and the turns with their exact times.
    """
    clips = []
    for speaker, words in turns:
        voice, pitch = voices[speaker]
        clip = synth.trim_silence(synth.synthesize(words, voice=voice, pitch=pitch))
        clips.append(0.7 * clip / float(np.abs(clip).max()))
    step = -overlap if overlap else pause
    starts = [lead]
    for clip in clips[:-1]:
        starts.append(starts[-1] + clip.size / RATE + step)
    end = starts[-1] + clips[-1].size / RATE + lead
    samples = np.zeros(round(end * RATE), np.float32)
    timed = []
    for (speaker, words), clip, start in zip(turns, clips, starts, strict=True):
        first = round(start * RATE)
        samples[first : first + clip.size] += clip
        timed.append(Turn(speaker, words, start, start + clip.size / RATE))
    return samples, timed


def true_speaker(word: dict[str, Any], turns: list[Turn]) -> int:
    """The speaker whose turn holds most of a result's word."""
    overlaps = [max(0.0, min(word["end"], t.end) - max(word["start"], t.start)) for t in turns]
    return turns[int(np.argmax(overlaps))].speaker


def word_accuracy(words: list[dict[str, Any]], turns: list[Turn]) -> float:
    """The share of a result's words whose speaker is right under the best mapping of names to speakers.

    Args:
        words: The result's `timestamps.word` items, each with its `speaker`.
        turns: The truth.

    Returns:
        From 0 to 1; 0 when there are no words.
    """
    if not words:
        return 0.0
    names = sorted({w["speaker"] for w in words})
    speakers = sorted({t.speaker for t in turns})
    best = 0
    for order in itertools.permutations(speakers, min(len(names), len(speakers))):
        mapping = dict(zip(names, order, strict=False))
        best = max(best, sum(mapping.get(w["speaker"]) == true_speaker(w, turns) for w in words))
    return best / len(words)
