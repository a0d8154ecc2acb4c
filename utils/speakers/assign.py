"""Words get speakers from the diarizer's activity; the item gets its list of speakers (pure).

Each word takes the speaker slot most active during it (its mean probability over the word's frames),
so in overlapped speech a word goes to the voice that dominates it. With `max_speakers`, only that
many slots take part: the ones active longest. Speakers are named `S1`, `S2`, … in the order they
first speak a word; a slot that never gets a word is not a speaker of the item.
"""

import dataclasses
import math

import numpy as np

import config
from utils.asr.records import SpeakerTime, Word
from utils.speakers.diarizer import SpeakerActivity


def _kept_slots(active: np.ndarray, max_speakers: int | None) -> list[int]:
    """The slots that may take words: all, or the `max_speakers` active longest (earlier slot on ties)."""
    slots = list(range(active.shape[1]))
    if max_speakers is None or max_speakers >= len(slots):
        return slots
    busiest = sorted(slots, key=lambda slot: (-int(active[:, slot].sum()), slot))[:max_speakers]
    return sorted(busiest)


def _word_slot(word: Word, probabilities: np.ndarray, frame_seconds: float, slots: list[int]) -> int:
    """The slot most active over the word's frames (the nearest frame for a word shorter than one)."""
    frames = probabilities.shape[0]
    first = min(max(0, math.floor(word.start / frame_seconds)), frames - 1)
    last = min(max(first + 1, math.ceil(word.end / frame_seconds)), frames)
    scores = probabilities[first:last, slots].mean(axis=0)
    return slots[int(np.argmax(scores))]


def label_words(
    words: list[Word], activity: SpeakerActivity, max_speakers: int | None, channel: int | None = None
) -> tuple[list[Word], list[SpeakerTime]]:
    """Gives every word its speaker and lists the item's speakers.

    Args:
        words: The item's (or one channel's) words, times in seconds from the start of its audio.
        activity: The diarizer's output for the same audio.
        max_speakers: At most this many speakers (None: as many as the diarizer found).
        channel: The channel the words came from, recorded on the speakers (None: the mix).

    Returns:
        The words with `speaker` set, and the speakers in order of first word, each with the seconds
        the diarizer found them active. No words (silence): no speakers.
    """
    probabilities = activity.probabilities
    if not words or probabilities.size == 0:
        return list(words), []
    active = probabilities >= config.SPEAKER_ACTIVITY_THRESHOLD
    slots = _kept_slots(active, max_speakers)
    word_slots = [_word_slot(word, probabilities, activity.frame_seconds, slots) for word in words]
    names = {slot: f"S{number}" for number, slot in enumerate(dict.fromkeys(word_slots), start=1)}
    labelled = [
        dataclasses.replace(word, speaker=names[slot]) for word, slot in zip(words, word_slots, strict=True)
    ]
    speakers = [
        SpeakerTime(name, round(float(active[:, slot].sum()) * activity.frame_seconds, 3), channel)
        for slot, name in names.items()
    ]
    return labelled, speakers
