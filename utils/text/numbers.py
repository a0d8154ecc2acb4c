"""Number words written as digits ("twenty five" → "25"), word by word, so that word times survive.

`text2num` finds the number words of da, de, en, es, fr, it, nl and pt (`number_words`); what it finds
is kept only where the words say it: each finding is repaired or dropped (`number_repairs`), numbers
said back to back and scale words are read in their context (`number_context`), and a number beside a
fraction, a multiplier or in a range stays words (`number_neighbours`). Digits the model wrote stay as
they are; "minus" stays a word.

A number never spans punctuation or two channels. Number words that become one token become one word:
it starts when the first word starts and ends when the last ends, keeps the lowest confidence and the
speaker of most of its time.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from utils.asr.records import Word
from utils.text import number_context
from utils.text.number_neighbours import changed_by_neighbours
from utils.text.number_repairs import repaired
from utils.text.number_words import find, says_number, tokens, word_parts

_Item, _Merged = TypeVar("_Item"), TypeVar("_Merged")
LANGUAGES = ("da", "de", "en", "es", "fr", "it", "nl", "pt")
MODES = ("spoken", "digits")
# Words on each side of a number word that go to the parser with it ("a hundred", "point five").
_CONTEXT = 2


@dataclass(frozen=True)
class Replacement:
    """Tokens `start` to `end` (exclusive) become one token whose number is `text`."""

    start: int
    end: int
    text: str


def covers(language: str | None) -> bool:
    """Whether number words of `language` can be written as digits.

    Args:
        language: An ISO 639-1 code, or None.

    Returns:
        True for da, de, en, es, fr, it, nl and pt.
    """
    return language in LANGUAGES


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
    hits = [index for index, word in enumerate(words) if says_number(word, language)]
    if not hits:
        return []
    result = []
    for start, end in _stretches(hits, len(words)):
        stretch = _stretch_replacements(words[start:end], language, breaks[start:end] if breaks else None)
        result += [Replacement(item.start + start, item.end + start, item.text) for item in stretch]
    return [
        item for item in result if not changed_by_neighbours(words, breaks, item.start, item.end, language)
    ]


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
    parsed = tokens(words, breaks, language)
    found = [fixed for item in find(parsed, language) for fixed in repaired(item, parsed, language)]
    found = number_context.drop_lone_scales(found, parsed)
    found = number_context.with_ohs(found, parsed, language)
    found = number_context.resolved_chains(found, parsed, language)
    found = number_context.scale_words(found, parsed, language)
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


def merge_groups(
    words: Sequence[Word], language: str, context: int = 0
) -> tuple[list[Word], list[Replacement]]:
    """Words with number words as digits, and where they were replaced.

    Args:
        words: Words in spoken order.
        language: A covered ISO 639-1 code.
        context: How many of the first words are only read, never replaced (a stream's words already sent).

    Returns:
        The new words after the context, and the replacements over `words` (empty: no word replaced).
    """
    breaks = None
    if len({word.channel for word in words}) > 1:
        breaks = [index > 0 and word.channel != words[index - 1].channel for index, word in enumerate(words)]
    found = [r for r in replacements([w.word for w in words], language, breaks) if r.start >= context]
    return _applied(words, found, _merged_word)[context:], found


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
