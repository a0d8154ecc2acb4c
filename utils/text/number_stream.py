"""Number words as digits in a stream: words settle window by window (or turn by turn), and a number's
last words wait until the next ones show whether it goes on ("twenty" | "five" is 25)."""

from collections.abc import Sequence

from utils.asr.records import Word
from utils.text.language import detect, normalized
from utils.text.number_neighbours import LINKING_WORDS
from utils.text.number_words import word_parts, word_value
from utils.text.numbers import covers, merge_groups

# A stream holds back at most this many words of a run of single digits.
MAX_HELD_WORDS = 12
# A stream's language is detected in this many of its last words.
_DETECTED_WORDS = 200
# With no language given, every word waits until the language detected in the words heard is this sure
# (or `MAX_HELD_WORDS` words wait): one or two words are often read as another language ("one" as Danish),
# and words sent in the wrong one would stay as they are ("one 2 3").
_SURE_CONFIDENCE = 0.5
# The words sent last that are read again before the next ones ("pour" | "cent" is percent, not 100).
_CONTEXT_WORDS = 2
# Words that may belong to a number when what follows is not known yet (a stream's last words).
_CONNECTORS = frozenset(
    {"a", "an", "and", "point", "oh", "o", "und", "komma", "ein", "eine", "et", "virgule", "un", "une"}
    | {"y", "coma", "una", "e", "virgola", "vírgula", "um", "uma", "en", "een", "og"}
    | LINKING_WORDS  # "twenty or" | "thirty thousand", "a million and a" | "half"
)


def open_tail(words: Sequence[str], language: str) -> int:
    """Where the words that may still join a number said next begin (a stream's last words).

    Args:
        words: Tokens settled so far and not yet sent.
        language: A covered ISO 639-1 code.

    Returns:
        An index into `words`: tokens from there on wait for what follows. A long run of single digits
        (a number read out digit by digit) waits only for its last `MAX_HELD_WORDS` words.
    """
    index = len(words)
    while index > 0:
        lead, core, trail = word_parts(words[index - 1])
        if trail or not core:
            break
        if core.lower() not in _CONNECTORS and word_value(core, language) is None:
            break
        index -= 1
        if lead:
            break
    for cut in range(len(words) - MAX_HELD_WORDS, index, -1):
        if _single_digit(words[cut - 1], language) and _single_digit(words[cut], language):
            return cut
    return index


def _single_digit(word: str, language: str) -> bool:
    value = word_value(word_parts(word)[1], language)
    return value is not None and 0 <= value <= 9


class SettledDigits:
    """A stream's settled words with number words as digits, the last few held back while a number
    may go on in the words that come next ("twenty" | "five" is 25).

    The language is the one given, else the one detected in the last words heard.
    """

    def __init__(self, language: str | None = None) -> None:
        self._given = normalized(language) if language else None
        self._held: list[Word] = []
        self._heard: list[str] = []
        self._sent: list[Word] = []

    def language(self) -> str | None:
        """The language numbers are read in now.

        Returns:
            An ISO 639-1 code, or None (nothing heard yet).
        """
        return self._given or detect(" ".join(self._heard)).language

    def feed(self, words: Sequence[Word]) -> list[Word]:
        """The words that can be sent now.

        Args:
            words: Words just settled, in spoken order.

        Returns:
            The words held back before and these, as digits, less the ones that may still join a number.
        """
        self._heard = [*self._heard, *(word.word for word in words)][-_DETECTED_WORDS:]
        pending, language = [*self._held, *words], self._given
        if language is None:
            found = detect(" ".join(self._heard))
            if (found.confidence or 0) < _SURE_CONFIDENCE and len(pending) < MAX_HELD_WORDS:
                self._held = pending
                return []
            language = found.language
        if not covers(language):
            self._held = []
            return self._sending(pending, None)
        cut = open_tail([word.word for word in pending], language or "")
        self._held = pending[cut:]
        return self._sending(pending[:cut], language)

    def finish(self) -> list[Word]:
        """The words still held back, as digits: the stream has ended.

        Returns:
            The words.
        """
        held, self._held = self._held, []
        return self._sending(held, self.language())

    def _sending(self, words: list[Word], language: str | None) -> list[Word]:
        """`words` as digits, read after the last words sent (which stay as they were sent)."""
        if covers(language) and words:
            words = merge_groups([*self._sent, *words], language or "", len(self._sent))[0]
        self._sent = [*self._sent, *words][-_CONTEXT_WORDS:]
        return words
