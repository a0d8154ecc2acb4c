"""An item's transcript with its number words as digits: words merged (`utils.text.numbers`), and the
text and segments made to follow them."""

from collections.abc import Sequence
from dataclasses import replace

from utils.asr.records import Segment, Transcript, Word
from utils.text.numbers import LANGUAGES, covers, merge_groups, text_to_digits


def _owners(segments: Sequence[Segment], words: Sequence[Word]) -> list[int] | None:
    """The segment each word belongs to, found by walking each channel's segments and words together;
    None when their words do not line up."""
    owners: list[int | None] = [None] * len(words)
    for channel in {word.channel for word in words} | {segment.channel for segment in segments}:
        mine = [index for index, word in enumerate(words) if word.channel == channel]
        position = 0
        for number, segment in enumerate(segments):
            if segment.channel != channel:
                continue
            tokens = segment.text.split()
            taken = mine[position : position + len(tokens)]
            if [words[index].word for index in taken] != tokens:
                return None
            for index in taken:
                owners[index] = number
            position += len(tokens)
        if position != len(mine):
            return None
    return [owner for owner in owners if owner is not None] if None not in owners else None


def _segments(
    segments: list[Segment], words: Sequence[Word], merged: list[Word], spans: list[range], language: str
) -> list[Segment]:
    """Segments whose text follows the new words (a number said across two goes to the one holding most
    of its time); segments that do not line up with the words have their text converted alone."""
    owners = _owners(segments, words)
    if owners is None:
        return [replace(segment, text=text_to_digits(segment.text, language)) for segment in segments]
    held: list[list[Word]] = [[] for _ in segments]
    covered: list[set[int]] = [set() for _ in segments]
    for word, span in zip(merged, spans, strict=True):
        time: dict[int, float] = {}
        for index in span:
            time[owners[index]] = time.get(owners[index], 0.0) + max(
                words[index].end - words[index].start, 1e-6
            )
        owner = max(time, key=lambda number: time[number])
        held[owner].append(word)
        covered[owner].update(span)
    result = []
    for number, segment in enumerate(segments):
        mine = {index for index, owner in enumerate(owners) if owner == number}
        if not held[number]:
            if not mine:
                result.append(segment)  # a segment without words stays as it was
            continue  # its only words joined a number of the segment before or after
        text = " ".join(word.word for word in held[number])
        if covered[number] == mine:
            result.append(replace(segment, text=text))
        else:
            result.append(replace(segment, text=text, start=held[number][0].start, end=held[number][-1].end))
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
        merged, spans = merge_groups(words, code) if words else ([], [])
        if segments is not None:
            segments = _segments(segments, words, merged, spans, code)
        if [word.word for word in words] == text.split():
            text = " ".join(word.word for word in merged)
        elif transcript.channels is not None and segments is not None:
            text = " ".join(segment.text for segment in segments)  # as channels are merged
        else:
            text = text_to_digits(text, code)
        words = merged
    timestamps = replace(stamps, word=words, segment=segments)
    return replace(transcript, text=text, timestamps=timestamps, numbers="digits")
