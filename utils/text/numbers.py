"""Number words written as digits ("twenty five" → "25"), word by word, so that word times survive.

`text2num` (a compiled parser, no downloads) finds the number words of da, de, en, es, fr, it, nl and
pt; this module decides which of its findings to keep. It never writes a number the words did not say:
what the parser gets wrong is repaired or left as words.

- Ordinals stay words ("the second one", "twenty first").
- Isolated numbers below three stay words ("one of them", "a second"), as the parser decides.
- A run of single digits stays one digit a word ("two zero five" → "2 0 5", not the parser's "2 05").
- A decimal before a scale word keeps the scale word ("three point five million" → "3.5 million", not
  "3.5 1000000"; French and others: "3,5 millions", not "3,5000000").
- Two numbers said back to back are left as words ("fifty fifty", "nine eleven", times such as "twelve
  fifteen"), except years said in pairs in English and Dutch ("nineteen ninety nine" → "1999", "nineteen
  oh five" → "1905").
- A scale word after digits the model wrote stays a word ("25 Millionen", not "25 1000000"), and so
  does a bare one in English, a bare million ("Millionen Menschen") and "pour cent" (percent); after an
  article it is a number ("a hundred" → "100"), and so is a bare "cent" or "tausend".
- "minus" stays a word ("minus 5"); digits the model wrote stay as they are.

A number never spans punctuation or two channels. Number words that become one token become one word:
it starts when the first word starts and ends when the last ends, keeps the lowest confidence and the
speaker of most of its time.
"""

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from text_to_num import find_numbers, text2num

from utils.asr.records import Word

_Item, _Merged = TypeVar("_Item"), TypeVar("_Merged")
LANGUAGES = ("da", "de", "en", "es", "fr", "it", "nl", "pt")
MODES = ("spoken", "digits")
# Punctuation around a word's letters: what is outside them is kept, and separates numbers.
_EDGES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
# Scale words ("thousand", "Millionen") are numbers on their own; after a decimal they stay words.
_SCALES = frozenset({10**3, 10**6, 10**9, 10**12})
_SCALE_WORDS = frozenset({100, *_SCALES})
# An article the parser leaves before a scale word ("a hundred" → "a 100"): it is part of the number.
_ARTICLES = {"en": frozenset({"a", "an"}), "de": frozenset({"ein", "eine"})}
# English plural scale words say a span ("the eighteen hundreds", "hundreds of"), not a number.
_PLURAL_SCALES = frozenset({"hundreds", "thousands", "millions", "billions", "trillions"})
# Below this, a number said alone stays a word ("one of them", "zero"); within a run of digits it is one.
_ALONE_FROM = 3
# "pour cent", "per cento", "por ciento": percent, not a hundred.
_PERCENT_PREPOSITIONS = frozenset({"pour", "per", "por"})
# Languages whose speakers say years in pairs ("nineteen ninety nine"), and the first halves taken.
_PAIRED_YEARS = frozenset({"en", "nl"})
_YEAR_FIRST_HALVES = range(16, 21)
# Words on each side of a number word that go to the parser with it ("a hundred", "point five").
_CONTEXT = 2
# English "oh" (and "o"): a zero between two digits ("five oh five"), else a word ("eight o clock").
_OH = frozenset({"oh", "o"})


class _Token:
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
class Replacement:
    """Tokens `start` to `end` (exclusive) become one token whose number is `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Found:
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


def covers(language: str | None) -> bool:
    """Whether number words of `language` can be written as digits.

    Args:
        language: An ISO 639-1 code, or None.

    Returns:
        True for da, de, en, es, fr, it, nl and pt.
    """
    return language in LANGUAGES


@functools.lru_cache(maxsize=1 << 16)
def word_parts(token: str) -> tuple[str, str, str]:
    """A token's parts.

    Args:
        token: A word as the model writes it ("(twenty,").

    Returns:
        Its leading punctuation, its letters (inner marks kept: "twenty-five") and its trailing
        punctuation.
    """
    lead, core, trail = _EDGES.match(token).groups()  # type: ignore[union-attr]  (matches any string)
    return lead, core, trail


@functools.lru_cache(maxsize=1 << 16)
def word_value(core: str, language: str) -> int | None:
    """The number a single word says on its own (kept: a transcript repeats its words).

    Args:
        core: A word's letters, without punctuation.
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


@functools.lru_cache(maxsize=1 << 16)
def _says_number(word: str, language: str) -> bool:
    """Whether a token's letters are a number on their own (one cached look-up a word)."""
    return word_value(word_parts(word)[1], language) is not None


def _tokens(words: Sequence[str], breaks: Sequence[bool] | None, language: str) -> list[_Token]:
    """The parser's tokens: a token is separated after trailing and before leading punctuation, where a
    word has no letters, and where `breaks` says so. English "o" is no zero to the parser ("eight o
    clock"); between two digits it is one (`_with_ohs`)."""
    tokens = []
    previous_trail = False
    for index, word in enumerate(words):
        lead, core, trail = word_parts(word)
        separated = previous_trail or bool(lead) or not core or bool(breaks and breaks[index])
        blocked = language == "en" and core.lower() in _OH
        tokens.append(_Token(core or word, index > 0 and separated, blocked))
        previous_trail = bool(trail) or not core
    return tokens


def _decimal(found: _Found) -> bool:
    return "." in found.text or "," in found.text


def _repaired(found: _Found, tokens: list[_Token], language: str) -> list[_Found]:
    """One finding made right, split into several, or dropped (its words stay)."""
    if found.ordinal:
        return []
    if language == "en" and any(
        tokens[i].core.lower() in _PLURAL_SCALES for i in range(found.start, found.end)
    ):
        return []  # "the eighteen hundreds" are not 1800
    if _decimal(found):
        if _right_decimal(found):
            return [found]
        if found.end - found.start > 3:
            # "trois virgule cinq millions" → "3,5000000": the decimal alone, the last word (a scale word)
            # kept as it is.
            inner = _find(tokens[found.start : found.end - 1], language)
            whole = len(inner) == 1 and (inner[0].start, inner[0].end) == (0, found.end - 1 - found.start)
            if whole and _decimal(inner[0]):
                shifted = replace(inner[0], start=found.start, end=found.end - 1)
                return [shifted] if _right_decimal(shifted) else []
        return []
    if found.text.startswith("0") and len(found.text) > 1:
        # "zero zero seven" → "007", "two zero five" → "2", "05": one digit a word, or the words.
        digits = [word_value(tokens[index].core, language) for index in range(found.start, found.end)]
        if any(digit is None or not 0 <= digit <= 9 for digit in digits):
            return []
        return [_Found(found.start + i, found.start + i + 1, str(d), float(d)) for i, d in enumerate(digits)]
    if found.value != int(found.value) or found.text != str(int(found.value)):
        return []
    return [found]


def _right_decimal(found: _Found) -> bool:
    """Whether a decimal's digits say its value, and no more digits than its words can say (a word after
    the decimal mark says one or two)."""
    whole, _, fraction = found.text.replace(",", ".").partition(".")
    try:
        right = float(f"{whole}.{fraction}") == found.value
    except ValueError:
        return False
    return right and len(fraction) <= 2 * (found.end - found.start - 2)


def _find(tokens: list[_Token], language: str) -> list[_Found]:
    """The parser's findings, as records."""
    found = find_numbers(tokens, language)
    return [_Found(o.start, o.end, o.text, float(o.value), bool(o.is_ordinal)) for o in found]


def _touching(previous: _Found, found: _Found, tokens: list[_Token]) -> bool:
    return previous.end == found.start and not tokens[found.start].separated


def _scale_words(found: list[_Found], tokens: list[_Token], language: str) -> list[_Found]:
    """Numbers that begin with a scale word ("hundred", "Millionen", "mille"): after an article they
    take it in ("a hundred" → "100"); after digits the model wrote they stay words ("25 Millionen", not
    "25 1000000"). Alone, "cent" and "tausend" are numbers, but English says "a hundred" (a bare
    "million" is "the million dollar question"), a bare million is "millions of", and "pour cent" is
    "percent"."""
    articles = _ARTICLES.get(language, frozenset())
    kept: list[_Found] = []
    for item in found:
        if word_value(tokens[item.start].core, language) not in _SCALE_WORDS:
            kept.append(item)
            continue
        before = item.start - 1
        joined = before >= 0 and not tokens[item.start].separated and (not kept or kept[-1].end <= before)
        previous = tokens[before].core.lower() if joined else ""
        if any(char.isdigit() for char in previous):
            continue
        if previous in articles:
            kept.append(replace(item, start=before))
        elif item.end - item.start > 1 or (
            language != "en" and item.value < 10**6 and previous not in _PERCENT_PREPOSITIONS
        ):
            kept.append(item)
    return kept


def _with_ohs(found: list[_Found], tokens: list[_Token], language: str) -> list[_Found]:
    """English "oh" between two numbers is a zero ("five oh five", "nineteen oh five")."""
    if language != "en":
        return found
    result: list[_Found] = []
    for item in found:
        gap = item.start - 1
        if (
            result
            and result[-1].end == gap
            and tokens[gap].core.lower() in _OH
            and not tokens[gap].separated
            and not tokens[item.start].separated
        ):
            result.append(_Found(gap, gap + 1, "0", 0.0))
        result.append(item)
    return result


def _year(chain: list[_Found], language: str) -> _Found | None:
    """Two numbers that say a year ("nineteen ninety nine", "nineteen oh five"), as one."""
    if language not in _PAIRED_YEARS:
        return None
    first, rest = chain[0], chain[1:]
    if first.end - first.start != 1 or int(first.value) not in _YEAR_FIRST_HALVES:
        return None
    if len(rest) == 1 and 10 <= rest[0].value <= 99 and len(rest[0].text) == 2:
        return _Found(first.start, rest[0].end, f"{first.text}{rest[0].text}", 0.0)
    if len(rest) == 2 and rest[0].is_digit and rest[0].value == 0 and rest[1].is_digit and rest[1].value >= 1:
        return _Found(first.start, rest[1].end, f"{first.text}0{rest[1].text}", 0.0)
    return None


def _resolved_chains(found: list[_Found], tokens: list[_Token], language: str) -> list[_Found]:
    """Numbers said back to back: a run of digits stays, a year pair joins, anything else stays words. A
    number of one word below three said alone stays a word ("I have one.")."""
    chains: list[list[_Found]] = []
    for item in found:
        if chains and _touching(chains[-1][-1], item, tokens):
            chains[-1].append(item)
        else:
            chains.append([item])
    result = []
    for chain in chains:
        if len(chain) == 1:
            alone = chain[0]
            if alone.end - alone.start > 1 or alone.value >= _ALONE_FROM or _decimal(alone):
                result += chain
        elif all(item.is_digit for item in chain):
            result += chain
        elif (year := _year(chain, language)) is not None:
            result.append(year)
    return result


def _drop_lone_scales(found: list[_Found], tokens: list[_Token], language: str) -> list[_Found]:
    """A scale word right after a number stays a word ("3.5 million", not "3.5 1000000")."""
    kept: list[_Found] = []
    for item in found:
        lone = item.end - item.start == 1 and item.value in _SCALES
        if lone and kept and _touching(kept[-1], item, tokens):
            continue
        kept.append(item)
    return kept


def replacements(
    words: Sequence[str], language: str, breaks: Sequence[bool] | None = None
) -> list[Replacement]:
    """Where number words become digits.

    Args:
        words: Tokens in order (punctuation attached, as the model writes them).
        language: A covered ISO 639-1 code.
        breaks: True where a token must not join the one before (another channel); None: no such place.

    Returns:
        Non-overlapping replacements in order; tokens outside them stay as they are.
    """
    # Most words are not numbers: only the stretches around number words go to the parser.
    hits = [index for index, word in enumerate(words) if _says_number(word, language)]
    if not hits:
        return []
    result = []
    for start, end in _stretches(hits, len(words)):
        stretch = _stretch_replacements(words[start:end], language, breaks[start:end] if breaks else None)
        result += [Replacement(item.start + start, item.end + start, item.text) for item in stretch]
    return result


def _stretches(hits: list[int], count: int) -> list[tuple[int, int]]:
    """The ranges of tokens within `_CONTEXT` of a number word, joined where they meet."""
    stretches: list[tuple[int, int]] = []
    for index in hits:
        start, end = max(0, index - _CONTEXT), min(count, index + _CONTEXT + 1)
        if stretches and start <= stretches[-1][1]:
            stretches[-1] = (stretches[-1][0], end)
        else:
            stretches.append((start, end))
    return stretches


def _stretch_replacements(
    words: Sequence[str], language: str, breaks: Sequence[bool] | None
) -> list[Replacement]:
    """`replacements` within one stretch of words."""
    tokens = _tokens(words, breaks, language)
    found = [fixed for item in _find(tokens, language) for fixed in _repaired(item, tokens, language)]
    found = _drop_lone_scales(found, tokens, language)
    found = _with_ohs(found, tokens, language)
    found = _resolved_chains(found, tokens, language)
    found = _scale_words(found, tokens, language)
    result = []
    for item in found:
        lead = word_parts(words[item.start])[0]
        trail = word_parts(words[item.end - 1])[2]
        result.append(Replacement(item.start, item.end, f"{lead}{item.text}{trail}"))
    return result


def text_to_digits(text: str, language: str | None) -> str:
    """A text with its number words as digits (spaces collapsed).

    Args:
        text: A transcript or a segment's text.
        language: Its ISO 639-1 code; a language not covered (or None) leaves the text as it is.

    Returns:
        The text.
    """
    if not covers(language):
        return text
    tokens = text.split()
    return " ".join(_applied(tokens, replacements(tokens, language or ""), lambda group, text: text))


def _applied(
    items: Sequence[_Item], found: list[Replacement], merge: Callable[[Sequence[_Item], str], _Merged]
) -> list[_Item | _Merged]:
    """`items` with each replacement's items merged into one by `merge(group, text)`."""
    result: list[_Item | _Merged] = []
    position = 0
    for item in found:
        result.extend(items[position : item.start])
        result.append(merge(items[item.start : item.end], item.text))
        position = item.end
    result.extend(items[position:])
    return result


def _merged_word(group: Sequence[Word], text: str) -> Word:
    """One word for a number said in several: first start, last end, lowest confidence, main speaker."""
    if len(group) == 1:
        word = group[0]
        return Word(text, word.start, word.end, word.confidence, word.speaker, word.channel)
    confidences = [word.confidence for word in group]
    confidence = None if None in confidences else min(c for c in confidences if c is not None)
    spoken: dict[str | None, float] = {}
    for word in group:
        spoken[word.speaker] = spoken.get(word.speaker, 0.0) + max(word.end - word.start, 1e-6)
    speaker = max(spoken, key=lambda name: spoken[name])  # the first of equals: dicts keep order
    return Word(text, group[0].start, group[-1].end, confidence, speaker, group[0].channel)


def merge_groups(words: Sequence[Word], language: str) -> tuple[list[Word], list[Replacement]]:
    """Words with number words as digits, and where they were replaced.

    Args:
        words: Words in spoken order.
        language: A covered ISO 639-1 code.

    Returns:
        The new words, and the replacements over `words` (empty: the words are returned as they are).
    """
    breaks = None
    if len({word.channel for word in words}) > 1:
        breaks = [index > 0 and word.channel != words[index - 1].channel for index, word in enumerate(words)]
    found = replacements([word.word for word in words], language, breaks)
    if not found:
        return list(words), found
    return _applied(words, found, _merged_word), found


def to_digits(words: Sequence[Word], language: str | None) -> list[Word]:
    """Words with their number words as digits: the function a door calls on words it has settled.

    Args:
        words: Words in spoken order (a turn, an item, a window's settled words).
        language: Their ISO 639-1 code; a language not covered (or None) leaves them as they are.

    Returns:
        New words; each number said in several words is one word spanning their times.
    """
    if not covers(language) or not words:
        return list(words)
    return merge_groups(words, language or "")[0]
