"""Words to speakers (`utils.speakers.assign`): the speaker most active during each word, named in order
of first appearance, and segments split where the speaker changes."""

import numpy as np
import pytest

from utils.asr.records import SpeakerTime, Word, segments_of
from utils.speakers.assign import label_words
from utils.speakers.diarizer import SpeakerActivity

FRAME = 0.08


def activity(*spans: tuple[int, float, float], seconds: float = 6.0, slots: int = 4) -> SpeakerActivity:
    """Speaker probabilities that are 0.9 inside each `(slot, start, end)` span and 0.05 elsewhere."""
    frames = round(seconds / FRAME)
    probabilities = np.full((frames, slots), 0.05, np.float32)
    centres = (np.arange(frames) + 0.5) * FRAME
    for slot, start, end in spans:
        probabilities[(centres >= start) & (centres < end), slot] = 0.9
    return SpeakerActivity(probabilities, FRAME)


def words(*timed: tuple[str, float, float]) -> list[Word]:
    return [Word(text, start, end) for text, start, end in timed]


def test_each_word_takes_the_speaker_active_during_it_named_in_order_of_first_word() -> None:
    # Slot 2 speaks first: it is S1, whatever its slot number.
    found = activity((2, 0.0, 2.0), (0, 2.5, 4.0))
    labelled, speakers = label_words(
        words(("one", 0.2, 0.6), ("two", 0.8, 1.2), ("three", 2.7, 3.1)), found, None
    )
    assert [(w.word, w.speaker) for w in labelled] == [("one", "S1"), ("two", "S1"), ("three", "S2")]
    assert speakers == [
        SpeakerTime("S1", pytest.approx(2.0, abs=0.08)),
        SpeakerTime("S2", pytest.approx(1.5, abs=0.08)),
    ]


def test_in_overlap_a_word_goes_to_the_speaker_most_active_during_it() -> None:
    found = activity((0, 0.0, 3.0), (1, 1.0, 3.0))
    found.probabilities[round(1.0 / FRAME) : round(3.0 / FRAME), 0] = 0.6  # the first voice fades
    labelled, _ = label_words(words(("one", 0.2, 0.6), ("two", 1.5, 2.0)), found, None)
    assert [w.speaker for w in labelled] == ["S1", "S2"]


def test_max_speakers_keeps_the_longest_active_slots() -> None:
    found = activity((0, 0.0, 2.0), (1, 2.0, 2.4), (2, 2.5, 5.0))
    labelled, speakers = label_words(
        words(("one", 0.5, 0.9), ("two", 2.1, 2.3), ("three", 3.0, 3.4)), found, max_speakers=2
    )
    # Slot 1 (0.4 s) is dropped: its word goes to the kept slot more active then (a tie: the earlier).
    assert [w.speaker for w in labelled] == ["S1", "S1", "S2"]
    assert [s.seconds for s in speakers] == [pytest.approx(2.0, abs=0.08), pytest.approx(2.5, abs=0.08)]


def test_one_voice_is_one_speaker_and_silence_none() -> None:
    labelled, speakers = label_words(
        words(("one", 0.2, 0.6), ("two", 1.0, 1.4)), activity((1, 0.0, 2.0)), None
    )
    assert {w.speaker for w in labelled} == {"S1"}
    assert [s.speaker for s in speakers] == ["S1"]
    assert label_words([], activity(), None) == ([], [])


def test_a_word_past_the_last_frame_still_gets_a_speaker() -> None:
    labelled, _ = label_words(words(("one", 5.99, 6.4)), activity((3, 5.0, 6.0)), None)
    assert labelled[0].speaker == "S1"


def test_segments_split_where_the_speaker_changes_even_mid_sentence() -> None:
    spoken = [
        Word("one", 0.0, 0.3, speaker="S1"),
        Word("two", 0.4, 0.7, speaker="S1"),
        Word("three.", 0.8, 1.1, speaker="S2"),
        Word("four", 1.5, 1.8, speaker="S2"),
    ]
    assert [(s.text, s.speaker) for s in segments_of(spoken)] == [
        ("one two", "S1"),
        ("three.", "S2"),
        ("four", "S2"),
    ]
