"""A stream's settled words as digits: a number's last words wait for the next window."""

from utils.asr.records import Word
from utils.text import number_stream


def timed(text: str) -> list[Word]:
    """A word a second, each half a second long."""
    return [Word(token, index, index + 0.5) for index, token in enumerate(text.split(" "))]


def test_a_stream_holds_back_the_words_a_number_may_go_on_with() -> None:
    settled = number_stream.SettledDigits("en")
    first = settled.feed([Word("we", 0, 0.1), Word("paid", 0.1, 0.2), Word("twenty", 0.2, 0.4)])
    assert [w.word for w in first] == ["we", "paid"]
    second = settled.feed([Word("five", 0.4, 0.5), Word("dollars", 0.5, 0.8), Word("and", 0.8, 0.9)])
    assert [w.word for w in second] == ["25", "dollars"]
    assert [w.word for w in settled.finish()] == ["and"]


def test_a_stream_sends_a_long_run_of_digits_before_it_ends() -> None:
    settled = number_stream.SettledDigits("en")
    digits = timed("one two three four five six seven eight nine zero one two three four five")
    sent = settled.feed(digits)
    rest = settled.finish()
    assert len(sent) == len(digits) - number_stream.MAX_HELD_WORDS
    assert " ".join(w.word for w in sent + rest) == "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5"


def test_a_stream_detects_its_language_when_none_is_given() -> None:
    settled = number_stream.SettledDigits()
    sent = settled.feed(timed("wir haben siebenundzwanzig Euro bezahlt und sind dann nach Hause gegangen"))
    assert settled.language() == "de"
    assert [w.word for w in sent][2] == "27"


def test_a_stream_with_no_language_given_holds_its_first_words_until_the_language_is_sure() -> None:
    # "one" alone reads as Danish, "two zero" as Lithuanian: sent then, they would stay words.
    settled = number_stream.SettledDigits()
    sent = [*settled.feed(timed("one")), *settled.feed(timed("two zero")), *settled.feed(timed("five one"))]
    sent += settled.finish()
    assert " ".join(w.word for w in sent) == "1 2 0 5 1"


def test_a_stream_in_a_language_not_covered_passes_words_as_they_are() -> None:
    settled = number_stream.SettledDigits("pl")
    words = [Word("dwadzieścia", 0, 0.5), Word("pięć", 0.5, 1)]
    assert settled.feed(words) == words
    assert settled.finish() == []


def test_the_words_sent_last_are_read_before_the_next_ones() -> None:
    # "pour" | "cent" is percent and "25" | "tausend" a word after digits, as in the whole text; read
    # alone, the next window's bare "cent" or "tausend" would be written as 100 or 1000.
    for language, first, then, whole in [
        ("fr", "vingt pour", "cent des gens", "20 pour cent des gens"),
        ("de", "es sind 25", "tausend Leute", "es sind 25 tausend Leute"),
    ]:
        settled = number_stream.SettledDigits(language)
        sent = settled.feed(timed(first)) + settled.feed(timed(then)) + settled.finish()
        assert " ".join(w.word for w in sent) == whole


def test_a_stream_keeps_words_when_a_fraction_comes_in_the_next_window() -> None:
    settled = number_stream.SettledDigits("en")
    sent = settled.feed(timed("we need a million"))
    sent += settled.feed(timed("and a half more"))
    sent += settled.finish()
    assert " ".join(w.word for w in sent) == "we need a million and a half more"


def test_a_stream_keeps_words_when_a_fraction_came_in_the_last_window() -> None:
    settled = number_stream.SettledDigits("en")
    sent = settled.feed(timed("about a quarter of"))
    sent += settled.feed(timed("a million people"))
    sent += settled.finish()
    assert " ".join(w.word for w in sent) == "about a quarter of a million people"


def test_a_stream_holds_a_range_word_until_the_range_ends() -> None:
    settled = number_stream.SettledDigits("en")
    sent = settled.feed(timed("about three or"))
    sent += settled.feed(timed("four thousand people"))
    sent += settled.finish()
    assert " ".join(w.word for w in sent) == "about three or four thousand people"
