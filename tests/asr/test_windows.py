"""utils/asr/windows.py: window planning and seam stitching, on synthetic word timelines."""

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.asr import windows
from utils.asr.records import Segment, Word, segments_of
from utils.output.subtitles import shape_cues


def test_short_audio_is_one_window() -> None:
    assert windows.plan_windows(100, 100, 10) == [windows.Window(0, 100)]


def test_windows_cover_everything_with_the_overlap() -> None:
    planned = windows.plan_windows(1000, 300, 50)
    assert planned[0].start == 0
    assert planned[-1].end == 1000
    for left, right in itertools.pairwise(planned):
        assert left.end - right.start == 50
    assert all(w.end - w.start <= 300 for w in planned)


@given(st.integers(1, 10_000), st.integers(3, 500), st.data())
def test_planning_invariants(total: int, window: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, (window - 1) // 2))
    planned = windows.plan_windows(total, window, overlap)
    assert planned[0].start == 0
    assert planned[-1].end == total
    assert all(0 < w.end - w.start <= window for w in planned)
    for left, right in itertools.pairwise(planned):
        assert right.start == left.end - overlap
    # No window is wholly inside its neighbours' overlap (no wasted model call).
    assert all(right.end > left.end for left, right in itertools.pairwise(planned))


def test_overlap_must_be_under_half_the_window() -> None:
    with pytest.raises(ValueError, match="must be under half the window"):
        windows.plan_windows(1000, 100, 50)


def hear(truth: list[Word], start: float, end: float, rng: random.Random) -> list[Word]:
    """What a window [start, end) 'hears': whole words with timing jitter, cut words garbled."""
    heard = []
    for word in truth:
        jitter = rng.uniform(-0.04, 0.04)
        if word.start >= start and word.end <= end:
            heard.append(Word(word.word, word.start + jitter, word.end + jitter))
        elif word.end > start and word.start < end:
            heard.append(Word("GARBLED", max(word.start, start), min(word.end, end)))
    return heard


def stitch_timeline(truth: list[Word], total: float, window: float, overlap: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    rate = 100  # "samples" per second for planning
    planned = windows.plan_windows(int(total * rate), int(window * rate), int(overlap * rate))
    heard = [hear(truth, w.start / rate, w.end / rate, rng) for w in planned]
    seams = [
        windows.find_seam(heard[i], planned[i + 1].start / rate, planned[i].end / rate)
        for i in range(len(planned) - 1)
    ]
    return [w.word for w in windows.stitch_words(heard, seams)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.1, 0.9), st.floats(0.05, 1.5)), min_size=1, max_size=120),
    st.floats(8, 20),
    st.integers(0, 2**16),
)
def test_stitching_keeps_every_word_once_when_there_are_pauses(
    words: list[tuple[float, float]], window: float, seed: int
) -> None:
    truth, t = [], 0.0
    for i, (length, gap) in enumerate(words):
        t += gap
        truth.append(Word(f"w{i}", t, t + length))
        t += length
    total = t + 0.5
    assert stitch_timeline(truth, total, window, overlap=3.0, seed=seed) == [w.word for w in truth]


def test_seam_lands_in_the_widest_pause() -> None:
    left = [
        Word("a", 10.0, 10.5),
        Word("b", 10.6, 11.0),
        Word("c", 12.0, 12.4),
    ]
    assert windows.find_seam(left, overlap_start=9.0, overlap_end=13.0) == pytest.approx(11.5)


def test_continuous_speech_assigns_each_word_by_its_centre() -> None:
    left = [Word(f"l{i}", i * 0.5, i * 0.5 + 0.5) for i in range(40)]
    right = [Word(f"l{i}", i * 0.5 + 0.01, i * 0.5 + 0.51) for i in range(20, 60)]
    seam = windows.find_seam(left, overlap_start=10.0, overlap_end=20.0)
    stitched = [w.word for w in windows.stitch_words([left, right], [seam])]
    assert stitched == [f"l{i}" for i in range(60)]


def test_segments_split_at_sentence_ends() -> None:
    words = [
        Word("Hello", 0.0, 0.4),
        Word("there.", 0.5, 0.9),
        Word("How", 1.5, 1.7),
        Word("are", 1.8, 1.9),
        Word("you", 2.0, 2.2),
    ]
    assert segments_of(words) == [Segment("Hello there.", 0.0, 0.9), Segment("How are you", 1.5, 2.2)]


def test_segments_and_subtitles_share_the_sentence_end_rule() -> None:
    # An ellipsis and a quoted sentence end end a segment, as they end a subtitle cue.
    words = [Word("Well…", 0.0, 0.4), Word('"Stop."', 0.5, 0.9), Word("Then", 1.0, 1.2)]
    assert [segment.text for segment in segments_of(words)] == ["Well…", '"Stop."', "Then"]
    assert [cue.lines for cue in shape_cues(words)] == [("Well…",), ('"Stop."',), ("Then",)]
