"""Numbers beside words that change their value stay words (text2num 3.1.0 wrote "half 1000000",
"1000000 y medio", "ein paar 1000", "double 7", "3 or 4000": numbers the words do not say)."""

import pytest

from utils.text.numbers import text_to_digits

CASES = [
    # A fraction after a number, through "and", an article or a numerator.
    ("en", "a million and a half", "a million and a half"),
    ("en", "twenty five and a half", "twenty five and a half"),
    ("en", "twenty five and three quarters", "twenty five and three quarters"),
    ("es", "un millón y medio", "un millón y medio"),
    ("es", "dos millones y medio", "dos millones y medio"),
    ("es", "mil y medio", "mil y medio"),
    ("es", "las tres y media", "las tres y media"),
    ("es", "tres cuartos", "tres cuartos"),
    ("fr", "un million et demi", "un million et demi"),
    ("fr", "cinq et demi", "cinq et demi"),
    ("fr", "trois quarts", "trois quarts"),
    ("it", "un milione e mezzo", "un milione e mezzo"),
    ("it", "tre e mezzo", "tre e mezzo"),
    ("it", "tre quarti", "tre quarti"),
    ("pt", "um milhão e meio", "um milhão e meio"),
    ("pt", "três e meia", "três e meia"),
    ("pt", "três quartos", "três quartos"),
    ("de", "drei und ein halb", "drei und ein halb"),
    ("de", "drei Viertel Million", "drei Viertel Million"),
    ("nl", "drie en een half", "drie en een half"),
    ("nl", "drie kwart", "drie kwart"),
    ("da", "tre kvart", "tre kvart"),
    ("da", "tre en halv", "tre en halv"),
    # A fraction before a number, through "of" and an article; "halb drei" is half past two.
    ("en", "half a million", "half a million"),
    ("en", "a quarter of a million", "a quarter of a million"),
    ("en", "three quarters of a million", "three quarters of a million"),
    ("de", "halb drei", "halb drei"),
    ("nl", "half drie", "half drie"),
    ("da", "halv tre", "halv tre"),
    # A number and a half in one word, before a scale word ("dreieinhalb 1000" was written).
    ("de", "dreieinhalb tausend", "dreieinhalb tausend"),
    ("nl", "tweeënhalf duizend", "tweeënhalf duizend"),
    # "And a bit" after a number ("3000000 y pico", "20 odd" were written).
    ("es", "tres millones y pico", "tres millones y pico"),
    ("pt", "três mil e pouco", "três mil e pouco"),
    ("it", "mille e rotti", "mille e rotti"),
    ("fr", "trois millions et des poussières", "trois millions et des poussières"),
    ("en", "twenty odd people", "twenty odd people"),
    # Brazilian "meia" is six when digits are read out: the digits beside it stay words.
    ("pt", "três meia cinco", "três meia cinco"),
    # A multiplier before a number.
    ("de", "ein paar tausend", "ein paar tausend"),
    ("es", "un par de mil", "un par de mil"),
    ("nl", "een paar duizend", "een paar duizend"),
    ("da", "et par tusind", "et par tusind"),
    # Doubled digits, and quantities before a scale word ("mehrere 1000 Leute" was written).
    ("en", "double seven", "double seven"),
    ("en", "call double oh seven", "call double oh seven"),
    ("de", "mehrere tausend Leute", "mehrere tausend Leute"),
    ("de", "einige tausend", "einige tausend"),
    ("nl", "enkele duizend", "enkele duizend"),
    ("nl", "honderden duizend", "honderden duizend"),
    ("da", "flere tusind", "flere tusind"),
    ("es", "varios mil", "varios mil"),
    ("es", "unos cuantos mil", "unos cuantos mil"),
    ("fr", "plusieurs mille", "plusieurs mille"),
    ("fr", "des centaines de mille", "des centaines de mille"),
    ("it", "qualche mille", "qualche mille"),
    ("pt", "vários mil", "vários mil"),
    # A range whose scale word is said once, at its end: both ends stay words ("3 or 4000" was written).
    ("en", "three or four thousand", "three or four thousand"),
    ("en", "between twenty and thirty thousand", "between twenty and thirty thousand"),
    ("en", "nineteen ninety or two thousand", "nineteen ninety or two thousand"),
    ("de", "zwei bis drei tausend", "zwei bis drei tausend"),
    ("de", "zwanzig oder dreißigtausend", "zwanzig oder dreißigtausend"),
    ("es", "dos o tres mil", "dos o tres mil"),
    ("fr", "deux ou trois mille", "deux ou trois mille"),
    ("it", "venti o trenta mila", "venti o trenta mila"),
    ("pt", "vinte ou trinta mil", "vinte ou trinta mil"),
    ("nl", "twintig of dertig duizend", "twintig of dertig duizend"),
    ("da", "tyve eller tredive tusind", "tyve eller tredive tusind"),
    # Ranges whose ends both say their scale, or none, are numbers.
    ("en", "one hundred or two hundred", "100 or 200"),
    ("en", "five or six", "5 or 6"),
    ("en", "I paid twenty and he paid thirty", "I paid 20 and he paid 30"),
    # Punctuation ends the reach of a fraction; a number beside other words is still a number.
    ("en", "I have five. Half of them left", "I have 5. Half of them left"),
    ("en", "five dozen eggs", "5 dozen eggs"),
    ("fr", "multiplié par trois", "multiplié par 3"),
    ("da", "halvtreds", "50"),
]


@pytest.mark.parametrize(("language", "spoken", "written"), CASES)
def test_text_cases(language: str, spoken: str, written: str) -> None:
    assert text_to_digits(spoken, language) == written
