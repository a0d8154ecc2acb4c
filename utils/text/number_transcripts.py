"""An item's transcript with its number words as digits: words merged (`utils.text.numbers`), and the
text and segments made to follow them."""

import bisect
from collections.abc import Sequence
from dataclasses import replace

from utils.asr.records import Segment, Transcript, Word
from utils.text.numbers import LANGUAGES, Replacement, covers, merge_groups, text_to_digits


def _segment_words(segments: Sequence[Segment], words: Sequence[Word]) -> list[Sequence[int]] | None:
    """The indices of each segment's words, found by walking each channel's segments and words together;
    None when their words do not line up."""
    tokens = [word.word for word in words]
    channels = {word.channel for word in words} | {segment.channel for segment in segments}
    if len(channels) == 1:
        by_channel: dict[int | None, Sequence[int]] = {channels.pop(): range(len(words))}
    else:
        by_channel = {
            channel: [i for i, word in enumerate(words) if word.channel == channel] for channel in channels
        }
    positions = dict.fromkeys(by_channel, 0)
    result: list[Sequence[int]] = []
    for segment in segments:
        mine, position = by_channel[segment.channel], positions[segment.channel]
        expected = segment.text.split()
        taken = mine[position : position + len(expected)]
        heard = tokens[taken.start : taken.stop] if isinstance(taken, range) else [tokens[i] for i in taken]
        if heard != expected:
            return None
        result.append(taken)
        positions[segment.channel] = position + len(expected)
    if any(positions[channel] != len(mine) for channel, mine in by_channel.items()):
        return None
    return result


def _segments(
    segments: list[Segment], words: Sequence[Word], found: list[Replacement], language: str
) -> list[Segment]:
    """Segments whose text follows the new words (a number said across two goes to the one holding most
    of its time); segments that do not line up with the words have their text converted alone."""
    groups = _segment_words(segments, words)
    if groups is None:
        return [replace(segment, text=text_to_digits(segment.text, language)) for segment in segments]
    replaced = {index for item in found for index in range(item.start, item.end)}
    if all(isinstance(group, range) for group in groups):  # one channel: segments follow each other
        starts = [group.start for group in groups]  # type: ignore[union-attr]
        owner = {index: bisect.bisect_right(starts, index) - 1 for index in replaced}
    else:
        owner = {index: number for number, group in enumerate(groups) for index in group if index in replaced}
    # Each replacement goes to one segment; segments that gave or took a word move their times.
    given: dict[int, int] = {}
    moved: set[int] = set()
    for place, item in enumerate(found):
        if item.end - item.start == 1:
            given[place] = owner[item.start]
            continue
        time: dict[int, float] = {}
        for index in range(item.start, item.end):
            spoken = max(words[index].end - words[index].start, 1e-6)
            time[owner[index]] = time.get(owner[index], 0.0) + spoken
        given[place] = max(time, key=lambda number: time[number])  # the first of equals
        if len(time) > 1:
            moved.update(time)
    taken: dict[int, list[Replacement]] = {}
    for place, item in enumerate(found):
        taken.setdefault(given[place], []).append(item)
    result = []
    for number, segment in enumerate(segments):
        if number not in taken and number not in moved:
            result.append(segment)
            continue
        # (word index, start, text, end) of what the segment now holds, in spoken order.
        mine = [(i, words[i].start, words[i].word, words[i].end) for i in groups[number] if i not in replaced]
        mine += [(i.start, words[i.start].start, i.text, words[i.end - 1].end) for i in taken.get(number, [])]
        mine.sort()
        if not mine:
            continue  # its only words joined a number of the segment before or after
        text = " ".join([word for _, _, word, _ in mine])
        if number in moved:
            result.append(replace(segment, text=text, start=mine[0][1], end=mine[-1][3]))
        else:
            result.append(replace(segment, text=text))
    return result


def with_digits(transcript: Transcript, language: str | None) -> Transcript:
    """An item's transcript with its number words as digits: text, words and segments (chars, the
    model's tokens, stay as they are).

    Args:
        transcript: The item's final transcript.
        language: The language to read numbers in (the job's `language`, else the detected one).

    Returns:
        The transcript with `numbers` set: "digits", or "spoken" with `numbers_note` saying why.
    """
    if language is None and not transcript.text.strip():
        return replace(transcript, numbers="digits")
    if not covers(language):
        shown = f"the language {language!r} is" if language else "no language was detected, which is"
        note = f"{shown} not one whose numbers are written as digits ({', '.join(LANGUAGES)})"
        return replace(transcript, numbers="spoken", numbers_note=note)
    code = language or ""
    stamps = transcript.timestamps
    words, segments, text = stamps.word, stamps.segment, transcript.text
    if words is None:
        text = text_to_digits(text, code)
        if segments is not None:
            segments = [replace(segment, text=text_to_digits(segment.text, code)) for segment in segments]
    else:
        merged, found = merge_groups(words, code)
        if not found:
            return replace(transcript, numbers="digits")  # no number words: nothing changes
        if segments is not None:
            segments = _segments(segments, words, found, code)
        if [word.word for word in words] == text.split():
            text = " ".join([word.word for word in merged])
        elif transcript.channels is not None and segments is not None:
            text = " ".join(segment.text for segment in segments)  # as channels are merged
        else:
            text = text_to_digits(text, code)
        words = merged
    timestamps = replace(stamps, word=words, segment=segments)
    return replace(transcript, text=text, timestamps=timestamps, numbers="digits")
