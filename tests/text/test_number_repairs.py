"""The parser's findings repaired or dropped: decimals, runs of digits, ordinals, plural and stacked
scale words (each case here is one text2num 3.1.0 gets wrong)."""

import pytest

from utils.text.numbers import text_to_digits

CASES = [
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
    ("de", "zwei null fünf", "2 0 5"),
    ("fr", "deux zéro cinq", "2 0 5"),
    # Ordinals stay words.
    ("en", "the second one", "the second one"),
    ("en", "the twenty first century", "the twenty first century"),
    ("en", "the fifth", "the fifth"),
    ("fr", "deuxième", "deuxième"),
    # An ordinal after a decimal mark: text2num reads "premier" as a digit ("3,1").
    ("fr", "trois virgule premier", "trois virgule premier"),
    ("es", "tres coma primera", "tres coma primera"),
    ("nl", "vijf komma eerste", "vijf komma eerste"),
    # Plural scale words say a span: text2num wrote "1000 de personas" and "100 de personas".
    ("en", "in the eighteen hundreds", "in the eighteen hundreds"),
    ("en", "hundreds of people", "hundreds of people"),
    ("es", "miles de personas", "miles de personas"),
    ("es", "cientos de personas", "cientos de personas"),
    # A scale word said twice: text2num adds one to the first ("101", "7000000001"); the words stay.
    ("nl", "honderd en honderd en vier", "honderd en 104"),
    ("da", "hundrede hundrede", "hundrede 100"),
    ("en", "seven billion billion", "seven billion billion"),
    ("de", "drei Milliarde Milliarde", "drei Milliarde Milliarde"),
    # A scale word after a bigger one: text2num adds them ("1001000", "1001000000"); the words stay.
    ("en", "a million thousand", "a million thousand"),
    ("en", "two million thousand", "two million thousand"),
    ("en", "a billion million", "a billion million"),
    ("de", "eine Milliarde Millionen", "eine Milliarde Millionen"),
    ("de", "eine Million tausend", "eine Million tausend"),
    ("de", "zwei Millionen Tausend", "zwei Millionen Tausend"),
    ("es", "un millón mil", "un millón mil"),
    ("fr", "un million mille", "un million mille"),
    ("it", "un milione mille", "un milione mille"),
    ("it", "un miliardo milioni", "un miliardo milioni"),
    ("pt", "um milhão mil", "um milhão mil"),
    ("nl", "een miljoen duizend", "een miljoen duizend"),
    ("nl", "een miljard miljoen", "een miljard miljoen"),
    ("da", "en million tusind", "en million tusind"),
    # A smaller scale word before a bigger one multiplies, and a hundred after a thousand adds.
    ("en", "a thousand million", "1000000000"),
    ("en", "a hundred thousand", "100000"),
    ("es", "mil millones", "1000000000"),
    ("es", "un millón cien mil", "1100000"),
    ("de", "zwei Millionen dreihunderttausend", "2300000"),
    ("it", "tre milioni duecentomila", "3200000"),
    ("fr", "mille cent", "1100"),
]


@pytest.mark.parametrize(("language", "spoken", "written"), CASES)
def test_text_cases(language: str, spoken: str, written: str) -> None:
    assert text_to_digits(spoken, language) == written
