"""Numbers beside words that change their value stay words: fractions ("half a million", "un millón
y medio", "twenty five and three quarters", "halb drei" for half past two), multipliers and quantities
before them ("ein paar tausend", "un par de mil", "double seven", "mehrere tausend") and ranges whose
scale word comes last ("twenty or thirty thousand"). The parser reads each number alone ("half
1000000", "1000000 y medio", "20 or 30000"): numbers the words do not say.
"""

from collections.abc import Sequence

from utils.text.number_words import joined, says_number, scale_value, word_parts

# Words that change the value of a number said before or after them: fractions, and "and a bit"
# ("tres millones y pico", "twenty odd").
_FRACTIONS = {
    "en": {"half", "halves", "quarter", "quarters", "third", "thirds", "fourths", "fifths", "eighths"}
    | {"tenths", "odd"},
    "de": {"halb", "halbe", "halben", "halber", "halbes", "hälfte", "viertel", "dreiviertel", "drittel"}
    | {"achtel", "anderthalb", "eineinhalb"},
    "fr": {"demi", "demie", "demis", "demies", "quart", "quarts", "tiers", "moitié", "poussières"},
    "es": {"medio", "media", "medios", "medias", "cuarto", "cuartos", "tercio", "tercios", "mitad", "pico"},
    "it": {"mezzo", "mezza", "mezzi", "mezze", "quarto", "quarti", "terzo", "terzi", "metà", "rotti"},
    # "meia" is also six when Brazilians read digits out ("um dois meia"): those stay words too.
    "pt": {"meio", "meia", "meios", "meias", "quarto", "quartos", "terço", "terços", "metade", "pouco"},
    "nl": {"half", "halve", "kwart", "derde", "derden", "helft", "anderhalf"},
    "da": {"halv", "halvt", "halve", "halvanden", "halvandet", "kvart", "kvarter", "tredjedel", "halvdel"}
    | {"halvdelen", "tredjedele"},
}
# Endings of words that say a number and a half ("dreieinhalb", "tweeënhalf"), unknown to the parser.
_HALF_ENDINGS = {"de": "halb", "nl": "half"}
# Words that multiply a number said after them ("a couple thousand", "double seven", "mehrere tausend").
_MULTIPLIERS = {
    "en": {"dozen", "dozens", "couple", "pair", "double", "triple", "several", "few"},
    "de": {"dutzend", "dutzende", "paar", "doppel", "einige", "mehrere", "etliche", "hunderte", "tausende"},
    "fr": {"douzaine", "douzaines", "couple", "paire", "double", "triple", "quelques", "plusieurs"}
    | {"centaines", "milliers", "dizaines"},
    "es": {"docena", "docenas", "par", "doble", "triple", "varios", "varias", "cuantos", "cuantas"}
    | {"algunos", "algunas", "cientos", "miles", "decenas"},
    "it": {"dozzina", "dozzine", "paio", "coppia", "doppio", "triplo", "qualche", "alcuni", "alcune"}
    | {"parecchi", "diversi", "centinaia", "migliaia", "decine"},
    "pt": {"dúzia", "dúzias", "par", "duplo", "triplo", "alguns", "algumas", "vários", "várias"}
    | {"centenas", "milhares", "dezenas"},
    "nl": {"dozijn", "paar", "dubbel", "enkele", "meerdere", "verscheidene", "honderden", "duizenden"},
    "da": {"dusin", "par", "dobbelt", "flere", "nogle", "adskillige", "hundreder", "tusinder"},
}
# Words between two numbers that make a range or a choice ("twenty or thirty thousand").
_RANGES = {
    "en": {"or", "to", "and"},
    "de": {"oder", "bis", "und"},
    "fr": {"ou", "à", "et"},
    "es": {"o", "u", "a", "y"},
    "it": {"o", "a", "e"},
    "pt": {"ou", "a", "e"},
    "nl": {"of", "tot", "en"},
    "da": {"eller", "til", "og"},
}
# Words that may stand between a number and such a word: "and", "a", "of" in the covered languages,
# and English "oh" ("double oh seven").
_LINKS = frozenset(
    {"and", "a", "an", "of", "und", "ein", "eine", "einen", "einem", "einer", "von", "et", "un", "une", "de"}
    | {"d", "des", "y", "una", "uno", "del", "e", "di", "um", "uma", "do", "da", "en", "een", "van", "og"}
    | {"af", "oh", "o"}
)
# Words a stream holds back after a number, until it knows whether a fraction or a range follows.
LINKING_WORDS = _LINKS | frozenset().union(*_RANGES.values())
# At most this many such words between a word before a number and the number ("a quarter of a").
_LINKS_BEFORE = 2


def _core(word: str) -> str:
    return word_parts(word)[1].lower()


def changed_by_neighbours(
    words: Sequence[str], breaks: Sequence[bool] | None, start: int, end: int, language: str
) -> bool:
    """Whether a number is said with a word that changes its value.

    Args:
        words: Tokens in order (punctuation attached).
        breaks: True where a token must not join the one before (another channel); None: no such place.
        start: The number's first token.
        end: The token after its last.
        language: A covered ISO 639-1 code.

    Returns:
        True where a fraction word follows it, through "and", articles and number words ("a million and
        a half", "twenty five and three quarters"); where a fraction or multiplier word comes before it,
        through at most two of "of" and articles ("a quarter of a million", "ein paar tausend"); and in
        a range of two numbers of which only the second ends in a scale word ("twenty or thirty
        thousand", both).
    """
    return (
        _fraction_after(words, breaks, end, language)
        or _word_before(words, breaks, start, language)
        or _in_range(words, breaks, start, end, language)
    )


def _fraction(core: str, language: str) -> bool:
    ending = _HALF_ENDINGS.get(language)
    return core in _FRACTIONS.get(language, set()) or bool(ending and core.endswith(ending))


def _fraction_after(words: Sequence[str], breaks: Sequence[bool] | None, end: int, language: str) -> bool:
    index = end
    while index < len(words) and joined(words, breaks, index):
        core = _core(words[index])
        if _fraction(core, language):
            return True
        if core not in _LINKS and not says_number(words[index], language):
            break
        index += 1
    return False


def _word_before(words: Sequence[str], breaks: Sequence[bool] | None, start: int, language: str) -> bool:
    multipliers = _MULTIPLIERS.get(language, set())
    index = start - 1
    while index >= 0 and start - index <= _LINKS_BEFORE + 1 and joined(words, breaks, index + 1):
        core = _core(words[index])
        if _fraction(core, language) or core in multipliers:
            return True
        if core not in _LINKS:
            break
        index -= 1
    return False


def _number(word: str, language: str) -> bool:
    return scale_value(word_parts(word)[1], language) is not None


def _round(word: str, language: str) -> bool:
    """Whether a number word ends in a scale word ("thousand", "dreißigtausend", "hundred")."""
    value = scale_value(word_parts(word)[1], language)
    return value is not None and value >= 100 and value % 100 == 0


def _in_range(
    words: Sequence[str], breaks: Sequence[bool] | None, start: int, end: int, language: str
) -> bool:
    """Whether a number is one end of a range whose scale word is said once, at the end ("twenty or
    thirty thousand" is 20000 to 30000)."""
    ranges = _RANGES.get(language, set())

    def linked(index: int) -> bool:  # a range word at `index`, joined to the words on both sides
        return (
            0 < index < len(words) - 1
            and _core(words[index]) in ranges
            and joined(words, breaks, index)
            and joined(words, breaks, index + 1)
        )

    if linked(end) and not _round(words[end - 1], language):
        last = end + 1
        while (
            last + 1 < len(words) and joined(words, breaks, last + 1) and _number(words[last + 1], language)
        ):
            last += 1
        if _number(words[last], language) and _round(words[last], language):
            return True
    before = start - 2
    return (
        linked(start - 1)
        and _number(words[before], language)
        and not _round(words[before], language)
        and _round(words[end - 1], language)
    )
