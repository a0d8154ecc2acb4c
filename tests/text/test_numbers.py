"""Number words as digits: text cases in every covered language, word merging with times, confidence
and speakers, and random word salads (what text2num gets wrong is tested with the module that repairs it)."""

import random
import re

import pytest

from utils.asr.records import Word
from utils.text import numbers

CASES = [
    # Numbers.
    ("en", "it cost twenty five dollars", "it cost 25 dollars"),
    ("en", "one hundred and five", "105"),
    ("en", "two thousand and twenty", "2020"),
    # Negative numbers: the sign stays a word.
    ("en", "minus five degrees", "minus 5 degrees"),
    ("fr", "moins cinq", "moins 5"),
    # Digits stay digits.
    ("en", "2025 and twenty five", "2025 and 25"),
    ("en", "call 555 1234 now", "call 555 1234 now"),
    # Every covered language.
    ("de", "siebenundzwanzig Euro", "27 Euro"),
    ("fr", "vingt-cinq euros", "25 euros"),
    ("es", "veinticinco euros", "25 euros"),
    ("it", "venticinque euro", "25 euro"),
    ("pt", "vinte e cinco euros", "25 euros"),
    ("nl", "vijfentwintig euro", "25 euro"),
    ("da", "femogtyve kroner", "25 kroner"),
]


@pytest.mark.parametrize(("language", "spoken", "written"), CASES)
def test_text_cases(language: str, spoken: str, written: str) -> None:
    assert numbers.text_to_digits(spoken, language) == written


@pytest.mark.parametrize("language", [None, "ja", "pl"])
def test_a_language_not_covered_is_left_alone(language: str | None) -> None:
    assert not numbers.covers(language)
    assert numbers.text_to_digits("twenty five", language) == "twenty five"
    words = [Word("twenty", 0.0, 0.3), Word("five", 0.3, 0.6)]
    assert numbers.to_digits(words, language) == words


def test_number_words_become_one_word_with_their_times() -> None:
    words = [
        Word("paid", 0.0, 0.2, 0.9, "S1"),
        Word("twenty", 0.3, 0.6, 0.8, "S1"),
        Word("five", 0.6, 0.7, 0.5, "S2"),
        Word("dollars.", 0.8, 1.2, 0.95, "S1"),
    ]
    result = numbers.to_digits(words, "en")
    # The speaker of most of its time (0.3 s of S1 against 0.1 s of S2), the lowest confidence.
    assert result == [words[0], Word("25", 0.3, 0.7, 0.5, "S1"), words[3]]


def test_merged_words_keep_the_channel_and_never_join_two() -> None:
    words = [Word("twenty", 0.0, 0.3, channel=0), Word("five", 0.4, 0.6, channel=1)]
    assert [w.word for w in numbers.to_digits(words, "en")] == ["20", "5"]
    words = [Word("twenty", 0.0, 0.3, channel=1), Word("five", 0.4, 0.6, channel=1)]
    assert numbers.to_digits(words, "en") == [Word("25", 0.0, 0.6, channel=1)]


def timed(text: str) -> list[Word]:
    """A word a second, each half a second long."""
    return [Word(token, index, index + 0.5) for index, token in enumerate(text.split(" "))]


def test_merged_words_give_the_range_they_replace() -> None:
    words = timed("we had one hundred and five")
    merged, found = numbers.merge_groups(words, "en")
    assert [w.word for w in merged] == ["we", "had", "105"]
    assert found == [numbers.Replacement(2, 6, "105")]
    assert (merged[2].start, merged[2].end) == (2.0, 5.5)


VOCABULARY_TEXT = {
    "en": "zero oh one two three five nine ten eleven twelve nineteen twenty ninety hundred thousand million "
    "point and a minus first second the of dollars half quarters , . ? 25 2025",
    "de": "null eins zwei drei fünf neun zehn zwölf zwanzig siebenundzwanzig hundert tausend Millionen Komma "
    "und ein eine zweite der Euro halb Viertel paar , . 25",
    "fr": "zéro un une deux trois cinq neuf dix douze vingt vingt-cinq cent mille millions virgule et "
    "deuxième le euros demi quarts , . 25",
}
VOCABULARY = {language: text.split() for language, text in VOCABULARY_TEXT.items()}


@pytest.mark.parametrize("language", list(VOCABULARY))
def test_random_word_salad_keeps_times_in_order_and_writes_only_numbers(language: str) -> None:
    rng = random.Random(7)
    number = re.compile(r"^\W*\d+([.,]\d+)?\W*$")
    for _ in range(400):
        tokens = [rng.choice(VOCABULARY[language]) for _ in range(rng.randint(1, 12))]
        # Punctuation marks attach to the word before, as the model writes them.
        spoken: list[str] = []
        for token in tokens:
            if token in ",.?" and spoken:
                spoken[-1] += token
            elif token not in ",.?":
                spoken.append(token)
        words = [Word(token, index * 0.5, index * 0.5 + 0.4, 0.9) for index, token in enumerate(spoken)]
        result = numbers.to_digits(words, language)
        assert [(w.start, w.end) for w in result] == sorted((w.start, w.end) for w in result)
        assert all(0 <= w.start <= w.end <= words[-1].end for w in result)
        assert all(w in words or number.match(w.word) for w in result), (spoken, result)
        assert len(result) <= len(words)
        # The text alone reads the same.
        assert numbers.text_to_digits(" ".join(spoken), language) == " ".join(w.word for w in result)
