"""Number words as digits: text cases in every covered language (what text2num gets wrong included),
word merging with times, confidence and speakers, and a stream's held-back words."""

import random
import re

import pytest

from utils.asr.records import Word
from utils.text import numbers

CASES = [
    # Numbers.
    ("en", "it cost twenty five dollars", "it cost 25 dollars"),
    ("en", "one hundred and five", "105"),
    ("en", "Twenty five.", "25."),
    ("en", "(twenty five)", "(25)"),
    ("en", "a hundred dollars", "100 dollars"),
    ("en", "a million people", "1000000 people"),
    ("en", "two thousand and twenty", "2020"),
    # Decimals; text2num writes "3.5 1000000" and, in other languages, "3,5000000".
    ("en", "three point five million", "3.5 million"),
    ("en", "three point one four", "3.14"),
    ("en", "zero point five", "0.5"),
    ("fr", "trois virgule cinq millions", "3,5 millions"),
    ("de", "drei Komma fünf Millionen", "3,5 Millionen"),
    ("es", "tres coma cinco millones", "3,5 millones"),
    ("it", "tre virgola cinque milioni", "3,5 milioni"),
    ("pt", "três vírgula cinco milhões", "3,5 milhões"),
    ("nl", "drie komma vijf miljoen", "3,5 miljoen"),
    ("da", "tre komma fem millioner", "3,5 millioner"),
    # Runs of single digits, one digit a word; text2num writes "2 05" and "007".
    ("en", "call seven three nine two zero five", "call 7 3 9 2 0 5"),
    ("en", "zero zero seven", "0 0 7"),
    ("en", "five oh five", "5 0 5"),
    ("de", "zwei null fünf", "2 0 5"),
    ("fr", "deux zéro cinq", "2 0 5"),
    # Years said in pairs.
    ("en", "in nineteen ninety nine", "in 1999"),
    ("en", "twenty twenty five", "2025"),
    ("en", "nineteen oh five", "1905"),
    ("en", "two thousand twenty five", "2025"),
    ("nl", "negentien negenennegentig", "1999"),
    ("fr", "mille neuf cent quatre-vingt-dix-neuf", "1999"),
    # Negative numbers: the sign stays a word.
    ("en", "minus five degrees", "minus 5 degrees"),
    ("fr", "moins cinq", "moins 5"),
    # Not numbers, or not surely one number: left as words.
    ("en", "one of them", "one of them"),
    ("en", "wait a second", "wait a second"),
    ("en", "the second one", "the second one"),
    ("en", "the twenty first century", "the twenty first century"),
    ("en", "the fifth", "the fifth"),
    ("en", "fifty fifty", "fifty fifty"),
    ("en", "nine eleven", "nine eleven"),
    ("en", "at twelve fifteen", "at twelve fifteen"),
    ("en", "twelve oh five", "twelve oh five"),
    ("fr", "une seconde", "une seconde"),
    ("fr", "deuxième", "deuxième"),
    ("de", "eine Sekunde", "eine Sekunde"),
    ("es", "uno de ellos", "uno de ellos"),
    # A scale word after digits the model wrote, or alone, stays a word.
    ("de", "25 Millionen Euro", "25 Millionen Euro"),
    ("en", "3.5 million people", "3.5 million people"),
    ("fr", "25 mille cent euros", "25 mille cent euros"),
    ("fr", "vingt pour cent", "20 pour cent"),
    ("es", "veinte por ciento", "20 por ciento"),
    ("en", "the million dollar question", "the million dollar question"),
    ("de", "Millionen Menschen", "Millionen Menschen"),
    ("fr", "cent personnes", "100 personnes"),
    ("de", "tausend Leute", "1000 Leute"),
    ("it", "tre per cento", "3 per cento"),
    ("en", "at eight o clock", "at 8 o clock"),
    ("en", "I have one. Two of them left.", "I have one. Two of them left."),
    ("en", "in the eighteen hundreds", "in the eighteen hundreds"),
    ("en", "hundreds of people", "hundreds of people"),
    ("en", "nineteen o five", "1905"),
    ("en", "hundred and five", "105"),
    # Punctuation separates numbers.
    ("en", "twenty, five", "20, 5"),
    ("en", "I have twenty. Five more", "I have 20. 5 more"),
    # Digits stay digits.
    ("en", "2025 and twenty five", "2025 and 25"),
    ("en", "call 555 1234 now", "call 555 1234 now"),
    # Every covered language.
    ("de", "siebenundzwanzig Euro", "27 Euro"),
    ("de", "eine Million Euro", "1000000 Euro"),
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
    "point and a minus first second the of dollars , . ? 25 2025",
    "de": "null eins zwei drei fünf neun zehn zwölf zwanzig siebenundzwanzig hundert tausend Millionen Komma "
    "und ein eine zweite der Euro , . 25",
    "fr": "zéro un une deux trois cinq neuf dix douze vingt vingt-cinq cent mille millions virgule et "
    "deuxième le euros , . 25",
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
