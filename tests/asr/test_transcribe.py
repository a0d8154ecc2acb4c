"""Turning NeMo's hypotheses into typed records (`utils.asr.transcribe`): which tokens spell which word."""

from types import SimpleNamespace

import pytest

from utils.asr import transcribe
from utils.asr.decoding import TOKEN_LOGPROBS
from utils.asr.records import LOGPROBS, Word, segments_of


@pytest.mark.parametrize(
    ("pieces", "words", "spans"),
    [
        (["s", "e", "ve", "n", "t", "hree"], ["seven", "three"], [(0, 4), (4, 6)]),
        # A bare word marker goes with the word after it; trailing ones with the last word.
        (["\u2581", "hello", "\u2581", "wor", "ld", "."], ["hello", "world."], [(0, 2), (2, 6)]),
        (["a", "b", " "], ["ab"], [(0, 3)]),
        ([], [], []),
    ],
)
def test_tokens_are_regrouped_into_the_words_they_spell(
    pieces: list[str], words: list[str], spans: list[tuple[int, int]]
) -> None:
    assert transcribe.token_spans(pieces, words) == spans


@pytest.mark.parametrize(
    ("pieces", "words"),
    [(["s", "e"], ["seven"]), (["seven", "x"], ["seven"]), (["abc"], ["ab", "c"]), (["a"], [])],
)
def test_tokens_that_do_not_spell_the_words_are_not_matched(pieces: list[str], words: list[str]) -> None:
    assert transcribe.token_spans(pieces, words) is None


@pytest.mark.parametrize(
    ("token_starts", "word_starts", "spans"),
    [
        ([0.0, 0.05, 0.3, 0.31], [0.02, 0.3], [(0, 2), (2, 4)]),
        ([0.5], [0.0, 0.4, 0.9], [(0, 0), (0, 1), (1, 1)]),
        ([], [0.0], [(0, 0)]),
    ],
)
def test_tokens_go_with_words_by_time_when_they_do_not_spell_them(
    token_starts: list[float], word_starts: list[float], spans: list[tuple[int, int]]
) -> None:
    assert transcribe.spans_by_time(token_starts, word_starts) == spans


def hypothesis(logprobs: list[float] | None, pieces: str = "ab") -> SimpleNamespace:
    chars = [{"char": [piece], "start": 0.1 * i, "end": 0.1 * i + 0.1} for i, piece in enumerate(pieces)]
    found = SimpleNamespace(
        y_sequence=[7, 8],
        timestamp={
            "char": chars,
            "word": [{"word": "a", "start": 0.0, "end": 0.1}, {"word": "b", "start": 0.1, "end": 0.2}],
        },
    )
    setattr(found, TOKEN_LOGPROBS, logprobs)
    return found


def test_words_and_segments_carry_their_tokens_and_mean_log_probability() -> None:
    timestamps = transcribe.timestamps_of(
        hypothesis([-0.5, -0.1]), frozenset({"word", "segment", LOGPROBS}), 1.0
    )
    assert [(word.tokens, word.logprobs) for word in timestamps.word] == [((7,), (-0.5,)), ((8,), (-0.1,))]
    [segment] = timestamps.segment
    assert (segment.tokens, segment.avg_logprob, segment.start) == ((7, 8), pytest.approx(-0.3), 1.0)


def test_tokens_that_do_not_spell_the_words_are_grouped_by_time() -> None:
    kinds = frozenset({"word", "segment", LOGPROBS})
    timestamps = transcribe.timestamps_of(hypothesis([-0.5, -0.1], pieces="xy"), kinds, 0.0)
    assert [word.tokens for word in timestamps.word] == [(7,), (8,)]
    assert timestamps.segment[0].avg_logprob == pytest.approx(-0.3)


def test_without_log_probabilities_words_stay_and_segments_have_no_tokens() -> None:
    timestamps = transcribe.timestamps_of(hypothesis(None), frozenset({"word", "segment", LOGPROBS}), 0.0)
    assert [word.word for word in timestamps.word] == ["a", "b"]
    assert all(word.tokens is None for word in timestamps.word)
    assert timestamps.segment[0].tokens is None
    assert timestamps.segment[0].avg_logprob is None


def test_a_segment_is_only_given_tokens_when_every_word_has_them() -> None:
    words = [Word("a", 0.0, 0.1, tokens=(7,), logprobs=(-0.2,)), Word("b.", 0.1, 0.2), Word("c", 0.3, 0.4)]
    first, second = segments_of(words)
    assert first.tokens is None
    assert first.avg_logprob is None
    assert second.tokens is None
    words[2:] = [Word("c", 0.3, 0.4, tokens=(9, 10), logprobs=(-1.0, 0.0))]
    assert segments_of(words)[1].avg_logprob == pytest.approx(-0.5)
