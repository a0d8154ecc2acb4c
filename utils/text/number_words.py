"""Words as the number parser reads them: a word's parts and value, the parser's tokens and findings.

`text2num` (a compiled parser, no downloads) finds the number words of da, de, en, es, fr, it, nl and
pt; the other number modules decide which of its findings to keep.
"""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from text_to_num import find_numbers, text2num

# Punctuation around a word's letters: what is outside them is kept, and separates numbers.
_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
# Scale words ("thousand", "Millionen") are numbers on their own; after a decimal they stay words.
SCALES = frozenset({10**3, 10**6, 10**9, 10**12})
SCALE_WORDS = frozenset({100, *SCALES})
# English "oh" (and "o"): a zero between two digits ("five oh five"), else a word ("eight o clock").
OH = frozenset({"oh", "o"})
# Italian scale words the parser reads only after a number ("un milione"), never alone.
_BOUND_SCALES = {
    "it": {"mila": 10**3, "milione": 10**6, "milioni": 10**6, "miliardo": 10**9, "miliardi": 10**9},
}
_SPELLINGS = {("es", "veintiún"): "veintiuno", ("es", "veintiun"): "veintiuno"}  # unknown to text2num


class Token:
    """One word as the parser sees it: its letters, and whether something separates it from the one
    before (punctuation, another channel). Implements text2num's token protocol."""

    __slots__ = ("blocked", "core", "separated")

    def __init__(self, core: str, separated: bool, blocked: bool = False) -> None:
        self.core = core
        self.separated = separated
        self.blocked = blocked

    def text(self) -> str:
        return self.core

    def nt_separated(self, previous: object) -> bool:
        return self.separated

    def not_a_number_part(self) -> bool:
        return self.blocked


@dataclass(frozen=True)
class Found:
    """A number the parser found: tokens [start, end), its digits and value."""

    start: int
    end: int
    text: str
    value: float
    ordinal: bool = False

    @property
    def is_digit(self) -> bool:
        """One word that is one digit ("seven", "null")."""
        return self.end - self.start == 1 and self.text.isdigit() and len(self.text) == 1

    @property
    def is_decimal(self) -> bool:
        """A number with a decimal mark ("3.5", "3,5")."""
        return "." in self.text or "," in self.text


@functools.lru_cache(maxsize=1 << 16)
def word_parts(token: str) -> tuple[str, str, str]:
    """A token's parts.

    Args:
        token: A word as the model writes it ("(twenty,").

    Returns:
        Its leading punctuation, its letters (inner marks kept: "twenty-five") and its trailing punctuation.
    """
    return _EDGES.match(token).groups()  # type: ignore[union-attr, return-value]  (matches any string)


@functools.lru_cache(maxsize=1 << 16)
def word_value(core: str, language: str) -> int | None:
    """The number a word (or words) says on its own (kept: a transcript repeats its words).

    Args:
        core: A word's letters, without punctuation (or several words' letters, joined by spaces).
        language: A covered ISO 639-1 code.

    Returns:
        Its value ("twenty" → 20, "zero" → 0), or None for a word that is no number alone.
    """
    if not core or core.isdigit():
        return None
    try:
        return int(text2num(core, language))
    except ValueError:
        return None


def scale_value(core: str, language: str) -> int | None:
    """The number a word says alone, or the scale it says after a number (Italian "milioni").

    Args:
        core: A word's letters, without punctuation.
        language: A covered ISO 639-1 code.

    Returns:
        Its value, or None for a word that is no number.
    """
    return _BOUND_SCALES.get(language, {}).get(core.lower(), word_value(core, language))


@functools.lru_cache(maxsize=1 << 16)
def says_number(word: str, language: str) -> bool:
    """Whether a token's letters are a number on their own (one cached look-up a word).

    Args:
        word: A word as the model writes it, punctuation attached.
        language: A covered ISO 639-1 code.

    Returns:
        True for "twenty," or "Millionen"; False for "25" or "the".
    """
    return word_value(word_parts(word)[1], language) is not None


def joined(words: Sequence[str], breaks: Sequence[bool] | None, index: int) -> bool:
    """Whether a word follows the one before with nothing between (no punctuation, no other channel).

    Args:
        words: Tokens in order (punctuation attached).
        breaks: True where a token must not join the one before; None: no such place.
        index: A word's index, above 0.

    Returns:
        True where both words may belong to one number.
    """
    lead, core, _ = word_parts(words[index])
    previous_trail, previous_core = word_parts(words[index - 1])[2], word_parts(words[index - 1])[1]
    return not (lead or not core or previous_trail or not previous_core or (breaks and breaks[index]))


def tokens(words: Sequence[str], breaks: Sequence[bool] | None, language: str) -> list[Token]:
    """The parser's tokens for some words.

    Args:
        words: Tokens in order (punctuation attached).
        breaks: True where a token must not join the one before; None: no such place.
        language: A covered ISO 639-1 code.

    Returns:
        One token a word: separated after trailing and before leading punctuation, where a word has no
        letters, and where `breaks` says so. English "o" is no zero to the parser ("eight o clock");
        between two digits it is one (see `number_context.with_ohs`). Spanish "veintiún" is read as
        "veintiuno".
    """
    result = []
    previous_trail = False
    for index, word in enumerate(words):
        lead, core, trail = word_parts(word)
        separated = previous_trail or bool(lead) or not core or bool(breaks and breaks[index])
        blocked = language == "en" and core.lower() in OH
        spelled = _SPELLINGS.get((language, core.lower()), core)
        result.append(Token(spelled or word, index > 0 and separated, blocked))
        previous_trail = bool(trail) or not core
    return result


def find(tokens: list[Token], language: str) -> list[Found]:
    """The parser's findings.

    Args:
        tokens: The parser's tokens (`tokens`).
        language: A covered ISO 639-1 code.

    Returns:
        The numbers the parser found, as records, in order.
    """
    found = find_numbers(tokens, language)
    return [Found(o.start, o.end, o.text, float(o.value), bool(o.is_ordinal)) for o in found]
