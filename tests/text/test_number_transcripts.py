"""An item's transcript with digits: its text, words and segments agree, and the note for a language
that is not covered."""

from utils.asr.records import Char, Segment, Timestamps, Transcript, Word, segments_of
from utils.text import number_transcripts


def words_of(
    text: str, speaker: str | None = None, channel: int | None = None, at: float = 0.0
) -> list[Word]:
    return [
        Word(token, at + index * 0.5, at + index * 0.5 + 0.4, 0.9, speaker, channel)
        for index, token in enumerate(text.split())
    ]


def transcript(words: list[Word], segments: list[Segment] | None = None, **fields: object) -> Transcript:
    text = " ".join(word.word for word in words)
    chars = [Char("▁twen", 0.0, 0.2)]
    stamps = Timestamps(
        word=words, segment=segments if segments is not None else segments_of(words), char=chars
    )
    return Transcript(text=text, attention="full", timestamps=stamps, language="en", **fields)  # type: ignore[arg-type]


def test_text_words_and_segments_follow_the_digits() -> None:
    words = words_of("We paid twenty five dollars. Then nineteen ninety nine came.")
    result = number_transcripts.with_digits(transcript(words), "en")
    assert result.text == "We paid 25 dollars. Then 1999 came."
    assert [w.word for w in result.timestamps.word] == result.text.split()
    assert [s.text for s in result.timestamps.segment] == ["We paid 25 dollars.", "Then 1999 came."]
    # Segment times are unchanged; the merged words span their words.
    assert [(s.start, s.end) for s in result.timestamps.segment] == [(0.0, 2.4), (2.5, 4.9)]
    assert (result.timestamps.word[2].start, result.timestamps.word[2].end) == (1.0, 1.9)
    assert result.timestamps.char == [Char("▁twen", 0.0, 0.2)]  # the model's tokens stay
    assert (result.numbers, result.numbers_note) == ("digits", None)


def test_a_number_across_two_speakers_goes_to_the_segment_holding_most_of_it() -> None:
    first = words_of("I said twenty", "S1")
    second = [Word("five", 1.5, 1.7, 0.8, "S2"), Word("again", 1.8, 2.1, 0.9, "S2")]
    words = first + second
    result = number_transcripts.with_digits(transcript(words), "en")
    assert result.text == "I said 25 again"
    assert [(s.text, s.speaker, s.start, s.end) for s in result.timestamps.segment] == [
        ("I said 25", "S1", 0.0, 1.7),
        ("again", "S2", 1.8, 2.1),
    ]
    assert result.timestamps.word[2] == Word("25", 1.0, 1.7, 0.8, "S1")


def test_channels_kept_apart_never_share_a_number() -> None:
    left = words_of("twenty", channel=0)
    right = words_of("five apples", channel=1, at=0.2)
    words = sorted(left + right, key=lambda word: word.start)
    segments = [Segment("twenty", 0.0, 0.4, channel=0), Segment("five apples", 0.2, 1.1, channel=1)]
    merged = transcript(words, segments, channels=2)
    merged.text = "twenty five apples"  # as channels are merged: the segments' texts in time order
    result = number_transcripts.with_digits(merged, "en")
    assert [w.word for w in result.timestamps.word] == ["20", "5", "apples"]
    assert [s.text for s in result.timestamps.segment] == ["20", "5 apples"]
    assert result.text == "20 5 apples"


def test_segments_that_do_not_line_up_with_the_words_are_converted_alone() -> None:
    words = words_of("twenty five dollars")
    segments = [Segment("twenty five euros", 0.0, 1.4)]  # not these words: converted on their own
    result = number_transcripts.with_digits(transcript(words, segments), "en")
    assert [s.text for s in result.timestamps.segment] == ["25 euros"]
    assert result.text == "25 dollars"


def test_a_transcript_without_words_has_its_text_converted() -> None:
    plain = Transcript(text="twenty five dollars", attention="full", language="en")
    result = number_transcripts.with_digits(plain, "en")
    assert (result.text, result.timestamps.word) == ("25 dollars", None)


def test_another_language_keeps_its_words_and_says_why() -> None:
    words = words_of("dwadzieścia pięć")
    result = number_transcripts.with_digits(transcript(words), "pl")
    assert result.text == "dwadzieścia pięć"
    assert result.timestamps.word == words
    assert result.numbers == "spoken"
    assert "'pl'" in (result.numbers_note or "")
    assert "en" in (result.numbers_note or "")


def test_an_empty_transcript_has_nothing_to_convert() -> None:
    empty = Transcript(text="", attention="none", timestamps=Timestamps(word=[], segment=[]))
    result = number_transcripts.with_digits(empty, None)
    assert (result.text, result.numbers, result.numbers_note) == ("", "digits", None)
