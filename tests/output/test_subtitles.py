"""Subtitle cues (`utils.output.subtitles`) from word timestamps, read back with real SRT and WebVTT
parsers: shaping, speaker and channel labels, and a job's subtitle_options through the real handler."""

import html
import io
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

import config
import handler
from tests.support.media import b64, encode, speech
from utils.asr.records import Word
from utils.output import subtitles
from utils.output.subtitles import Cue, shape_cues, to_srt, to_vtt

LIMITS = {"max_line_chars": 42, "max_lines": 2, "max_cue_seconds": 7.0, "pause_seconds": 0.8}


def timed(text: str, start: float = 0.0, duration: float = 0.3, gap: float = 0.1) -> list[dict[str, Any]]:
    """Words of `text` one after another; a "|" token inserts a 1 s pause instead of a word."""
    words, t = [], start
    for token in text.split():
        if token == "|":
            t += 1.0
            continue
        words.append(Word(token, round(t, 3), round(t + duration, 3)))
        t += duration + gap
    return words


def read_srt(text: str) -> list[tuple[int, int, list[str]]]:
    """(start ms, end ms, lines) of every cue, as the `srt` package parses them."""
    return [
        (s.start // timedelta(milliseconds=1), s.end // timedelta(milliseconds=1), s.content.split("\n"))
        for s in srt.parse(text)
    ]


def read_vtt(text: str) -> list[tuple[int, int, list[str]]]:
    """(start ms, end ms, unescaped lines) of every cue, as `webvtt-py` parses them."""
    return [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), [html.unescape(x) for x in c.lines])
        for c in webvtt.from_string(text)
    ]


def ends_sentence(word: str) -> bool:
    """Sentence end as the issue defines it, looking past closing quotes and brackets."""
    return word.rstrip("\"'”’»)]").endswith((".", "?", "!", "…"))


def check(words: list[dict[str, Any]], cues: list[Cue], limits: dict[str, Any]) -> list[list[str]]:
    """Asserts every invariant on `cues` and both read-backs; returns the words of each cue."""
    ms = [round(c.start * 1000) for c in cues], [round(c.end * 1000) for c in cues]
    expected = [(start, end, list(c.lines)) for start, end, c in zip(*ms, cues, strict=True)]
    assert read_srt(to_srt(cues)) == expected
    assert read_vtt(to_vtt(cues)) == expected
    assert to_vtt(cues).startswith("WEBVTT\n")

    per_cue = [" ".join(c.lines).split() for c in cues]
    assert [w for cue_words in per_cue for w in cue_words] == [w.word for w in words]
    index = 0
    for i, (cue, cue_words) in enumerate(zip(cues, per_cue, strict=True)):
        group = words[index : index + len(cue_words)]
        index += len(cue_words)
        assert cue.start == group[0].start
        assert cue.end == group[-1].end
        assert i == 0 or cues[i - 1].end <= cue.start
        assert len(cue.lines) <= limits["max_lines"]
        assert all(len(line) <= limits["max_line_chars"] or " " not in line for line in cue.lines)
        if len(group) > 1:
            assert cue.end - cue.start <= limits["max_cue_seconds"]
        for before, after in pairwise(group):
            assert not ends_sentence(before.word)
            assert after.start - before.end < limits["pause_seconds"]
    return per_cue


def test_sentence_ends_and_pauses_end_cues() -> None:
    words = timed('Hello there. How are you? He said "stop." Then | after a pause… ok')
    cues = shape_cues(words, **LIMITS)
    assert check(words, cues, LIMITS) == [
        ["Hello", "there."],
        ["How", "are", "you?"],
        ["He", "said", '"stop."'],
        ["Then"],
        ["after", "a", "pause…"],
        ["ok"],
    ]


def test_srt_and_vtt_text_and_times() -> None:
    cues = shape_cues(timed("Hello world. Bye.", start=1.5), **LIMITS)
    assert to_srt(cues) == (
        "1\n00:00:01,500 --> 00:00:02,200\nHello world.\n\n2\n00:00:02,300 --> 00:00:02,600\nBye.\n\n"
    )
    assert to_vtt(cues) == (
        "WEBVTT\n\n00:00:01.500 --> 00:00:02.200\nHello world.\n\n00:00:02.300 --> 00:00:02.600\nBye.\n"
    )


@pytest.mark.parametrize(
    ("start", "srt_time", "vtt_time"),
    [(3725.5, "01:02:05,500", "01:02:05.500"), (360_000.25, "100:00:00,250", "100:00:00.250")],
)
def test_hours(start: float, srt_time: str, vtt_time: str) -> None:
    words = [Word("late", start, start + 0.5)]
    cues = shape_cues(words, **LIMITS)
    assert f"{srt_time} -->" in to_srt(cues)
    assert f"\n{vtt_time} -->" in to_vtt(cues)
    check(words, cues, LIMITS)


def test_vtt_escapes_markup_and_arrows() -> None:
    words = timed("AT&T <b>bold</b> a-->b")
    cues = shape_cues(words, **LIMITS)
    vtt = to_vtt(cues)
    assert "AT&amp;T &lt;b&gt;bold&lt;/b&gt; a--&gt;b" in vtt
    assert [line for _, _, lines in read_vtt(vtt) for line in lines] == ["AT&T <b>bold</b> a-->b"]
    srt_text = to_srt(cues)
    assert srt_text.count("-->") == 1
    assert "a->b" in srt_text


def test_empty_input() -> None:
    assert shape_cues([], **LIMITS) == []
    assert shape_cues([Word(" ", 0.0, 0.1)], **LIMITS) == []
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n"
    assert read_srt("") == []
    assert read_vtt("WEBVTT\n") == []


def test_single_very_long_word_stands_alone() -> None:
    long_word = "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen"
    words = [*timed("before it"), Word(long_word, 0.8, 9.8), *timed("after", 9.9)]
    cues = shape_cues(words, **LIMITS)
    assert check(words, cues, LIMITS) == [["before", "it"], [long_word], ["after"]]
    assert cues[1].lines == (long_word,)


def test_long_run_without_punctuation_breaks_by_length() -> None:
    words = timed(" ".join(["subtitle", "lines", "keep", "going", "on"] * 40), duration=0.1, gap=0.02)
    cues = shape_cues(words, **LIMITS)
    check(words, cues, LIMITS)
    assert len(cues) > 10
    assert all(len(c.lines) == 2 for c in cues[:-1])


def test_slow_speech_breaks_by_duration() -> None:
    words = timed(" ".join(["so"] * 30), duration=0.6, gap=0.3)
    cues = shape_cues(words, **LIMITS)
    check(words, cues, LIMITS)
    assert [len(" ".join(c.lines).split()) for c in cues] == [8, 8, 8, 6]


@pytest.mark.parametrize(
    ("text", "line_chars", "first_cue"),
    [
        # The latest clause mark in the cue's second half ends it.
        ("one two three four five six seven eight nine ten, eleven twelve thirteen", 60, "ten,"),
        # A clause mark in the first half would leave a stub: the cue stays full instead.
        ("one, two three four five six seven", 30, "six"),
        # After the clause mark, the rest and the next word would not fit one cue: break before it.
        ("aaa bbb ccc, dd eeeeeeeeeeeeeeeeee", 20, "dd"),
    ],
)
def test_forced_break_prefers_a_clause_mark(text: str, line_chars: int, first_cue: str) -> None:
    limits = {**LIMITS, "max_lines": 1, "max_line_chars": line_chars}
    words = timed(text)
    assert check(words, shape_cues(words, **limits), limits)[0][-1] == first_cue


def test_lines_are_balanced() -> None:
    words = timed("the quick brown fox jumps over the lazy dog again and again")
    (cue,) = shape_cues(words, **LIMITS)
    assert len(cue.lines) == 2
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= len("again")


def test_overlapping_word_times_never_overlap_cues() -> None:
    words = [Word("Hi.", 0.0, 0.5), Word("Yes.", 0.4, 0.9)]
    cues = shape_cues(words, **LIMITS)
    assert [(c.start, c.end) for c in cues] == [(0.0, 0.4), (0.4, 0.9)]


def test_limits_come_from_config_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "SUBTITLE_MAX_LINE_CHARS", 10)
    monkeypatch.setattr(config, "SUBTITLE_MAX_LINES", 1)
    words = timed("a few short words to wrap")
    check(words, shape_cues(words), {**LIMITS, "max_line_chars": 10, "max_lines": 1})
    with pytest.raises(ValueError, match="positive"):
        shape_cues(words, max_cue_seconds=0)


@st.composite
def word_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random words (with punctuation and markup characters) at random durations and gaps."""
    texts = draw(st.lists(st.text("abcXYZ&<>'\".,?!…:;0", min_size=1, max_size=25), max_size=60))
    t, words = draw(st.integers(0, 10_000_000)), []
    for text in texts:
        start = t + draw(st.integers(0, 2000))
        t = start + draw(st.integers(0, draw(st.sampled_from([1000, 12_000]))))
        words.append(Word(text, start / 1000, t / 1000))
    return words


@settings(max_examples=300, deadline=None)
@given(
    words=word_lists(),
    limits=st.fixed_dictionaries(
        {
            "max_line_chars": st.integers(1, 50),
            "max_lines": st.integers(1, 3),
            "max_cue_seconds": st.integers(500, 10_000).map(lambda ms: ms / 1000),
            "pause_seconds": st.integers(100, 2000).map(lambda ms: ms / 1000),
        }
    ),
)
def test_invariants_hold_for_random_words(words: list[dict[str, Any]], limits: dict[str, Any]) -> None:
    check(words, shape_cues(words, **limits), limits)


def test_a_cue_never_spans_two_speakers_and_says_who_speaks() -> None:
    spoken = [
        Word("one", 0.0, 0.3, speaker="S1"),
        Word("two", 0.4, 0.7, speaker="S1"),
        Word("three", 0.8, 1.1, speaker="S2"),
    ]
    cues = subtitles.shape_cues(spoken)
    assert [(cue.speaker, cue.lines) for cue in cues] == [("S1", ("one two",)), ("S2", ("three",))]
    assert "S1: one two\n" in subtitles.to_srt(cues)
    assert "<v S2>three\n" in subtitles.to_vtt(cues)


def test_the_srt_label_counts_in_the_first_lines_width() -> None:
    spoken = [Word(f"w{i:02d}", i * 0.3, i * 0.3 + 0.2, speaker="S1") for i in range(6)]
    cues = subtitles.shape_cues(spoken, max_line_chars=12, max_lines=3)
    srt_lines = [line for line in subtitles.to_srt(cues).splitlines() if line.startswith(("S1", "w"))]
    assert srt_lines[0].startswith("S1: ")
    assert all(len(line) <= 12 for line in srt_lines)


def test_channel_and_speaker_labels() -> None:
    assert subtitles.speaker_label(Word("one", 0, 1, speaker="S2", channel=1)) == "ch1 S2"
    assert subtitles.speaker_label(Word("one", 0, 1, channel=0)) == "ch0"
    assert subtitles.speaker_label(Word("one", 0, 1)) is None


SIXTEEN_DIGITS = "one two three four five six seven eight nine zero one two three four five six"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(
        speech(SIXTEEN_DIGITS), tmp_path_factory.mktemp("subtitled") / "digits.opus", "-c:a", "libopus"
    )


def subtitled(clip: Path, **fields: Any) -> dict[str, Any]:
    job = {"id": "subs", "input": {"audio_base64": b64(clip), "output_format": ["srt", "vtt"], **fields}}
    return handler.handler(job)


def cue_shapes(result: dict[str, Any]) -> list[tuple[list[str], float]]:
    """(lines, seconds) of every cue, read by both parsers, which must agree."""
    from_srt = [(s.content.splitlines(), (s.end - s.start).total_seconds()) for s in srt.parse(result["srt"])]
    from_vtt = [
        (c.lines, c.end_in_seconds - c.start_in_seconds)
        for c in webvtt.from_buffer(io.StringIO(result["vtt"]))
    ]
    assert [lines for lines, _ in from_srt] == [lines for lines, _ in from_vtt]
    return from_srt


def test_cues_obey_the_options_a_job_asks_for(clip: Path, job_root: Path) -> None:
    default = cue_shapes(subtitled(clip))
    narrow = cue_shapes(
        subtitled(clip, subtitle_options={"max_line_chars": 12, "max_lines": 1, "max_cue_seconds": 1.5})
    )
    assert len(narrow) > len(default)
    for lines, seconds in narrow:
        assert len(lines) == 1
        assert all(len(line) <= 12 for line in lines)
        assert seconds <= 1.5
    spoken = " ".join(line for lines, _ in narrow for line in lines)
    assert spoken == SIXTEEN_DIGITS


def test_absent_keys_keep_the_defaults(clip: Path, job_root: Path) -> None:
    assert cue_shapes(subtitled(clip, subtitle_options={})) == cue_shapes(subtitled(clip))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "subtitle_options must be an object, got array"),
        ({"max_lines": 0}, "subtitle_options.max_lines must be a whole number from 1 to 5, got 0"),
        ({"max_lines": 2.5}, "subtitle_options.max_lines must be a whole number from 1 to 5, got number"),
        (
            {"max_line_chars": True},
            "subtitle_options.max_line_chars must be a whole number from 10 to 200, got boolean",
        ),
        (
            {"max_line_chars": 500},
            "subtitle_options.max_line_chars must be a whole number from 10 to 200, got 500",
        ),
        (
            {"max_cue_seconds": "7"},
            "subtitle_options.max_cue_seconds must be a number from 0.5 to 60, got string",
        ),
        (
            {"max_cue_seconds": 0.1},
            "subtitle_options.max_cue_seconds must be a number from 0.5 to 60, got 0.1",
        ),
        ({"max_chars": 30}, "subtitle_options has unknown field(s) 'max_chars'"),
    ],
)
def test_bad_options_are_refused_by_name(options: Any, message: str, clip: Path, job_root: Path) -> None:
    result = subtitled(clip, subtitle_options=options)
    assert result["success"] is False
    assert result["error_type"] == "invalid_input"
    assert result["error"].startswith(message), result["error"]


def test_options_without_subtitles_are_refused(clip: Path, job_root: Path) -> None:
    job = {"id": "x", "input": {"audio_base64": b64(clip), "subtitle_options": {"max_lines": 1}}}
    result = handler.handler(job)
    assert result["error_type"] == "invalid_input"
    assert result["error"] == 'subtitle_options shape "srt" and "vtt" output; add one to output_format'
