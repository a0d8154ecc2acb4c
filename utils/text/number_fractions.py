"""Numbers beside a word that changes their value stay words: fractions ("half a million", "un millón
y medio", "twenty five and three quarters", "halb drei" for half past two) and multipliers before them
("ein paar tausend", "un par de mil"). The parser reads the number alone ("half 1000000", "1000000 y
medio"), a number the words do not say.
"""

from collections.abc import Sequence

from utils.text.number_words import joined, says_number, word_parts

# Words that change the value of a number said before or after them.
_FRACTIONS = {
    "en": {"half", "halves", "quarter", "quarters", "third", "thirds", "fourths", "fifths", "eighths"}
    | {"tenths"},
    "de": {"halb", "halbe", "halben", "halber", "halbes", "hälfte", "viertel", "dreiviertel", "drittel"}
    | {"achtel", "anderthalb", "eineinhalb"},
    "fr": {"demi", "demie", "demis", "demies", "quart", "quarts", "tiers", "moitié"},
    "es": {"medio", "media", "medios", "medias", "cuarto", "cuartos", "tercio", "tercios", "mitad"},
    "it": {"mezzo", "mezza", "mezzi", "mezze", "quarto", "quarti", "terzo", "terzi", "metà"},
    # "meia" is also six when Brazilians read digits out ("um dois meia"): those stay words too.
    "pt": {"meio", "meia", "meios", "meias", "quarto", "quartos", "terço", "terços", "metade"},
    "nl": {"half", "halve", "kwart", "derde", "derden", "helft", "anderhalf"},
    "da": {"halv", "halvt", "halve", "halvanden", "halvandet", "kvart", "kvarter", "tredjedel", "halvdel"}
    | {"halvdelen", "tredjedele"},
}
# Words that multiply a number said after them ("a couple thousand", "zwei Dutzend").
_MULTIPLIERS = {
    "en": {"dozen", "dozens", "couple", "pair"},
    "de": {"dutzend", "paar"},
    "fr": {"douzaine", "douzaines", "couple", "paire"},
    "es": {"docena", "docenas", "par"},
    "it": {"dozzina", "dozzine", "paio", "coppia"},
    "pt": {"dúzia", "dúzias", "par"},
    "nl": {"dozijn", "paar"},
    "da": {"dusin", "par"},
}
# Words that may stand between a number and such a word: "and", "a", "of" in the covered languages.
_LINKS = frozenset(
    {"and", "a", "an", "of", "und", "ein", "eine", "einen", "einem", "einer", "von", "et", "un", "une", "de"}
    | {"d", "des", "y", "una", "uno", "del", "e", "di", "um", "uma", "do", "da", "en", "een", "van", "og"}
    | {"af"}
)
# At most this many such words between a word before a number and the number ("a quarter of a").
_LINKS_BEFORE = 2


def _core(word: str) -> str:
    return word_parts(word)[1].lower()


def beside_fraction(
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
        a half", "twenty five and three quarters"), or a fraction or multiplier word comes before it,
        through at most two of "of" and articles ("a quarter of a million", "ein paar tausend").
    """
    fractions = _FRACTIONS.get(language, set())
    index = end
    while index < len(words) and joined(words, breaks, index):
        core = _core(words[index])
        if core in fractions:
            return True
        if core not in _LINKS and not says_number(words[index], language):
            break
        index += 1
    before = fractions | _MULTIPLIERS.get(language, set())
    index = start - 1
    while index >= 0 and start - index <= _LINKS_BEFORE + 1 and joined(words, breaks, index + 1):
        core = _core(words[index])
        if core in before:
            return True
        if core not in _LINKS:
            break
        index -= 1
    return False
