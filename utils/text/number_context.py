"""The parser's findings beside each other and the words around them: which numbers said back to back
join, and which scale words are numbers.

- Isolated numbers below three stay words ("one of them", "a second").
- Two numbers said back to back are left as words ("fifty fifty", "nine eleven", times such as "twelve
  fifteen"), except runs of single digits ("2 0 5") and years said in pairs in English and Dutch
  ("nineteen ninety nine" → "1999", "nineteen oh five" → "1905").
- A scale word right after a number stays a word ("3.5 million", not "3.5 1000000"); so does one after
  digits the model wrote ("25 Millionen"), a bare one in English, a bare million ("Millionen Menschen")
  and "pour cent" (percent); after an article it is a number ("a hundred" → "100"), and so is a bare
  "cent" or "tausend".
"""

from dataclasses import replace

from utils.text.number_words import OH, SCALE_WORDS, SCALES, Found, Token, word_value

# An article the parser leaves before a scale word ("a hundred" → "a 100"): it is part of the number.
_ARTICLES = {"en": frozenset({"a", "an"}), "de": frozenset({"ein", "eine"})}
# Below this, a number said alone stays a word ("one of them", "zero"); within a run of digits it is one.
_ALONE_FROM = 3
# "pour cent", "per cento", "por ciento": percent, not a hundred.
_PERCENT_PREPOSITIONS = frozenset({"pour", "per", "por"})
# Languages whose speakers say years in pairs ("nineteen ninety nine"), and the first halves taken.
_PAIRED_YEARS = frozenset({"en", "nl"})
_YEAR_FIRST_HALVES = range(16, 21)


def _touching(previous: Found, found: Found, tokens: list[Token]) -> bool:
    return previous.end == found.start and not tokens[found.start].separated


def drop_lone_scales(found: list[Found], tokens: list[Token]) -> list[Found]:
    """A scale word right after a number stays a word ("3.5 million", not "3.5 1000000").

    Args:
        found: Numbers in order.
        tokens: The parser's tokens.

    Returns:
        The numbers kept.
    """
    kept: list[Found] = []
    for item in found:
        lone = item.end - item.start == 1 and item.value in SCALES
        if lone and kept and _touching(kept[-1], item, tokens):
            continue
        kept.append(item)
    return kept


def with_ohs(found: list[Found], tokens: list[Token], language: str) -> list[Found]:
    """English "oh" between two numbers is a zero ("five oh five", "nineteen oh five").

    Args:
        found: Numbers in order.
        tokens: The parser's tokens.
        language: A covered ISO 639-1 code.

    Returns:
        The numbers, with a zero for each such "oh".
    """
    if language != "en":
        return found
    result: list[Found] = []
    for item in found:
        gap = item.start - 1
        if (
            result
            and result[-1].end == gap
            and tokens[gap].core.lower() in OH
            and not tokens[gap].separated
            and not tokens[item.start].separated
        ):
            result.append(Found(gap, gap + 1, "0", 0.0))
        result.append(item)
    return result


def _year(chain: list[Found], language: str) -> Found | None:
    """Two numbers that say a year ("nineteen ninety nine", "nineteen oh five"), as one."""
    if language not in _PAIRED_YEARS:
        return None
    first, rest = chain[0], chain[1:]
    if first.end - first.start != 1 or int(first.value) not in _YEAR_FIRST_HALVES:
        return None
    if len(rest) == 1 and 10 <= rest[0].value <= 99 and len(rest[0].text) == 2:
        return Found(first.start, rest[0].end, f"{first.text}{rest[0].text}", 0.0)
    if len(rest) == 2 and rest[0].is_digit and rest[0].value == 0 and rest[1].is_digit and rest[1].value >= 1:
        return Found(first.start, rest[1].end, f"{first.text}0{rest[1].text}", 0.0)
    return None


def resolved_chains(found: list[Found], tokens: list[Token], language: str) -> list[Found]:
    """Numbers said back to back: a run of digits stays, a year pair joins, anything else stays words.

    Args:
        found: Numbers in order.
        tokens: The parser's tokens.
        language: A covered ISO 639-1 code.

    Returns:
        The numbers kept; a number of one word below three said alone stays a word ("I have one.").
    """
    chains: list[list[Found]] = []
    for item in found:
        if chains and _touching(chains[-1][-1], item, tokens):
            chains[-1].append(item)
        else:
            chains.append([item])
    result = []
    for chain in chains:
        if len(chain) == 1:
            alone = chain[0]
            if alone.end - alone.start > 1 or alone.value >= _ALONE_FROM or alone.is_decimal:
                result += chain
        elif all(item.is_digit for item in chain):
            result += chain
        elif (year := _year(chain, language)) is not None:
            result.append(year)
    return result


def scale_words(found: list[Found], tokens: list[Token], language: str) -> list[Found]:
    """Numbers that begin with a scale word ("hundred", "Millionen", "mille").

    Args:
        found: Numbers in order.
        tokens: The parser's tokens.
        language: A covered ISO 639-1 code.

    Returns:
        The numbers kept: after an article they take it in ("a hundred" → "100"); after digits the model
        wrote they stay words ("25 Millionen", not "25 1000000"). Alone, "cent" and "tausend" are numbers,
        but English says "a hundred" (a bare "million" is "the million dollar question"), a bare million is
        "millions of", and "pour cent" is "percent".
    """
    articles = _ARTICLES.get(language, frozenset())
    kept: list[Found] = []
    for item in found:
        if word_value(tokens[item.start].core, language) not in SCALE_WORDS:
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
