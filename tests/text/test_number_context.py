"""Numbers read in their context: numbers said back to back, years in pairs, "oh", scale words after
articles, digits or "pour"."""

import pytest

from utils.text.numbers import text_to_digits

CASES = [
    # Years said in pairs.
    ("en", "in nineteen ninety nine", "in 1999"),
    ("en", "twenty twenty five", "2025"),
    ("en", "nineteen oh five", "1905"),
    ("en", "nineteen o five", "1905"),
    ("en", "two thousand twenty five", "2025"),
    ("nl", "negentien negenennegentig", "1999"),
    ("fr", "mille neuf cent quatre-vingt-dix-neuf", "1999"),
    # "oh" between digits is a zero, else a word.
    ("en", "five oh five", "5 0 5"),
    ("en", "at eight o clock", "at 8 o clock"),
    # Not numbers, or not surely one number: left as words.
    ("en", "one of them", "one of them"),
    ("en", "wait a second", "wait a second"),
    ("en", "fifty fifty", "fifty fifty"),
    ("en", "nine eleven", "nine eleven"),
    ("en", "at twelve fifteen", "at twelve fifteen"),
    ("en", "twelve oh five", "twelve oh five"),
    ("fr", "une seconde", "une seconde"),
    ("de", "eine Sekunde", "eine Sekunde"),
    ("es", "uno de ellos", "uno de ellos"),
    ("en", "I have one. Two of them left.", "I have one. Two of them left."),
    # A scale word after digits the model wrote, or alone, stays a word; after an article it is a number.
    ("en", "a hundred dollars", "100 dollars"),
    ("en", "a million people", "1000000 people"),
    ("en", "hundred and five", "105"),
    ("de", "eine Million Euro", "1000000 Euro"),
    ("de", "25 Millionen Euro", "25 Millionen Euro"),
    ("en", "3.5 million people", "3.5 million people"),
    ("fr", "25 mille cent euros", "25 mille cent euros"),
    ("fr", "vingt pour cent", "20 pour cent"),
    ("es", "veinte por ciento", "20 por ciento"),
    ("it", "tre per cento", "3 per cento"),
    ("en", "the million dollar question", "the million dollar question"),
    ("de", "Millionen Menschen", "Millionen Menschen"),
    ("fr", "cent personnes", "100 personnes"),
    ("de", "tausend Leute", "1000 Leute"),
]


@pytest.mark.parametrize(("language", "spoken", "written"), CASES)
def test_text_cases(language: str, spoken: str, written: str) -> None:
    assert text_to_digits(spoken, language) == written
