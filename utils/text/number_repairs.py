"""The parser's findings one by one: each made right, split, or dropped where its words do not say it.

- Ordinals stay words ("the second one", "twenty first").
- A run of single digits stays one digit a word ("two zero five" → "2 0 5", not the parser's "2 05").
- A decimal before a scale word keeps the scale word ("trois virgule cinq millions" → "3,5 millions", not
  "3,5000000"); a decimal's last word must be a number (the parser reads "premier" as 1).
- Plural scale words say a span, not a number ("the eighteen hundreds", Spanish "miles de personas").
- A scale word right after a scale word at least as big stays words: the parser adds them ("a million
  thousand" → 1001000, "eine Milliarde Millionen" → 1001000000), the words may multiply.
- Any other finding is kept only where its words alone make the same number.
"""

import itertools
from dataclasses import replace

from utils.text.number_words import SCALES, Found, Token, find, scale_value, word_value

# Plural scale words say a span ("the eighteen hundreds", "miles de personas"), not a number.
_PLURAL_SCALES = {
    "en": frozenset({"hundreds", "thousands", "millions", "billions", "trillions"}),
    "es": frozenset({"cientos", "miles"}),
}


def repaired(found: Found, tokens: list[Token], language: str) -> list[Found]:
    """One finding made right, split into several, or dropped where its words do not say it (they stay).

    Args:
        found: A number the parser found in `tokens`.
        tokens: The parser's tokens.
        language: A covered ISO 639-1 code.

    Returns:
        The numbers to write in its place (none: its words stay).
    """
    cores = [tokens[index].core for index in range(found.start, found.end)]
    plural = _PLURAL_SCALES.get(language)
    if found.ordinal or (plural and any(core.lower() in plural for core in cores)):
        return []
    if len(cores) > 1 and _stacked_scales(cores, language):
        return []
    if found.is_decimal:
        if _right_decimal(found, tokens, language):
            return [found]
        if found.end - found.start > 3:
            # "trois virgule cinq millions" → "3,5000000": the decimal alone, the last word (a scale word)
            # kept as it is.
            inner = find(tokens[found.start : found.end - 1], language)
            whole = len(inner) == 1 and (inner[0].start, inner[0].end) == (0, found.end - 1 - found.start)
            if whole and inner[0].is_decimal:
                shifted = replace(inner[0], start=found.start, end=found.end - 1)
                return [shifted] if _right_decimal(shifted, tokens, language) else []
        return []
    if found.text.startswith("0") and len(found.text) > 1:
        # "zero zero seven" → "007", "two zero five" → "2", "05": one digit a word, or the words.
        digits = [word_value(core, language) for core in cores]
        if any(digit is None or not 0 <= digit <= 9 for digit in digits):
            return []
        return [Found(found.start + i, found.start + i + 1, str(d), float(d)) for i, d in enumerate(digits)]
    alone = word_value(" ".join(cores), language)
    return [found] if alone == found.value and found.text == str(alone) else []


def _stacked_scales(cores: list[str], language: str) -> bool:
    """Whether a scale word of a thousand or more follows a word worth at least as much ("a million
    thousand", "eine Milliarde Millionen"): the parser adds them, the words may say a product."""
    values = [scale_value(core, language) for core in cores]
    return any(
        before is not None and after in SCALES and before >= after
        for before, after in itertools.pairwise(values)
    )


def _right_decimal(found: Found, tokens: list[Token], language: str) -> bool:
    """Whether a decimal's digits say its value, no more digits than its words can say (a word after the
    decimal mark says one or two), and its last word is a number (the parser reads "premier" as 1)."""
    whole, _, fraction = found.text.replace(",", ".").partition(".")
    try:
        right = float(f"{whole}.{fraction}") == found.value
    except ValueError:
        return False
    enough = len(fraction) <= 2 * (found.end - found.start - 2)
    return right and enough and word_value(tokens[found.end - 1].core, language) is not None
