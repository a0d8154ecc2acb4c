"""Words as the number parser reads them: parts, values, tokens (punctuation and channels separate)."""

import pytest

from utils.text import number_words
from utils.text.numbers import text_to_digits


def test_a_word_splits_into_punctuation_and_letters() -> None:
    assert number_words.word_parts("(twenty,") == ("(", "twenty", ",")
    assert number_words.word_parts("twenty-five") == ("", "twenty-five", "")
    assert number_words.word_parts("...") == ("...", "", "")


def test_a_word_has_a_value_only_when_it_is_a_number_alone() -> None:
    assert number_words.word_value("twenty", "en") == 20
    assert number_words.word_value("zero", "en") == 0
    assert number_words.word_value("Millionen", "de") == 10**6
    assert number_words.word_value("the", "en") is None
    assert number_words.word_value("25", "en") is None
    assert number_words.says_number("twenty,", "en")
    assert not number_words.says_number("25", "en")


def test_tokens_are_separated_by_punctuation_and_channels() -> None:
    tokens = number_words.tokens(["twenty,", "five", "(six)", "seven"], [False, False, False, True], "en")
    assert [token.separated for token in tokens] == [False, True, True, True]
    assert number_words.joined(["twenty", "five"], None, 1)
    assert not number_words.joined(["twenty", "five"], [False, True], 1)


def test_the_parser_finds_numbers_as_records() -> None:
    found = number_words.find(number_words.tokens(["it", "cost", "twenty", "five"], None, "en"), "en")
    assert [(item.start, item.end, item.text, item.value) for item in found] == [(2, 4, "25", 25.0)]


CASES = [
    # Punctuation separates numbers.
    ("en", "Twenty five.", "25."),
    ("en", "(twenty five)", "(25)"),
    ("en", "twenty, five", "20, 5"),
    ("en", "I have twenty. Five more", "I have 20. 5 more"),
    # Spanish "veintiún" (before "mil") is unknown to text2num, which wrote "veintiún 1000".
    ("es", "veintiún mil personas", "21000 personas"),
    ("es", "veintiún mil millones", "21000000000"),
]


@pytest.mark.parametrize(("language", "spoken", "written"), CASES)
def test_text_cases(language: str, spoken: str, written: str) -> None:
    assert text_to_digits(spoken, language) == written
