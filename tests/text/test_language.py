"""Languages told from transcripts (lingua, shipped in its wheel), and how items and segments carry them."""

import pytest

from utils.asr.records import Segment, Timestamps, Transcript
from utils.output import results
from utils.text import language


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("seven three nine two zero five", "en"),
        ("Guten Morgen, wie geht es dir heute? Das Wetter ist schön.", "de"),
        ("Bonjour à tous et bienvenue dans cette réunion.", "fr"),
        ("Buenos días, ¿cómo estás hoy?", "es"),
        ("Доброе утро, как у вас дела сегодня?", "ru"),
    ],
)
def test_a_transcript_gets_its_language_and_a_confidence(text: str, code: str) -> None:
    found = language.detect(text)
    assert found.language == code
    assert 0.5 < found.confidence <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "123 456", "…?!"])
def test_text_without_letters_has_no_language(text: str) -> None:
    assert language.detect(text) == language.NONE


def test_the_detector_knows_every_model_language_but_maltese() -> None:
    assert "mt" not in language.detectable()
    assert len(language.detectable()) == 24


@pytest.mark.parametrize(("code", "base"), [("en", "en"), ("PT-br", "pt"), ("de_AT", "de"), (" fr ", "fr")])
def test_codes_are_compared_without_case_or_region(code: str, base: str) -> None:
    assert language.normalized(code) == base


def test_segments_say_their_own_language_only_where_it_is_surely_another() -> None:
    segments = [
        Segment("Good morning everyone and welcome to the meeting.", 0.0, 3.0),
        Segment("Guten Morgen, wie geht es dir heute?", 3.0, 5.0),
        Segment("Danke.", 5.0, 5.5),  # too short to say
        Segment("Let us start with the budget for next year, and then the hiring plan.", 5.5, 9.0),
    ]
    transcript = Transcript(
        text=" ".join(segment.text for segment in segments),
        attention="full",
        timestamps=Timestamps(segment=segments),
    )
    labelled = language.label(transcript)
    assert labelled.language == "en"
    assert 0 < labelled.language_confidence <= 1
    assert [segment.language for segment in labelled.timestamps.segment] == [None, "de", None, None]
    assert labelled.timestamps.as_json(frozenset({"segment"}))["segment"][1]["language"] == "de"
    assert "language" not in labelled.timestamps.as_json(frozenset({"segment"}))["segment"][0]


def test_an_empty_transcript_has_no_language() -> None:
    labelled = language.label(Transcript(text="", attention="full"))
    assert (labelled.language, labelled.language_confidence) == (None, None)


@pytest.mark.parametrize(
    "text",
    [
        "Il-Malti huwa l-lingwa nazzjonali ta' Malta u hija waħda mil-lingwi uffiċjali tal-Unjoni Ewropea.",
        "Il-kelb jiġri fil-ġnien.",
        "Jien ngħix f'Malta u nitkellem bil-Malti kuljum.",
    ],
)
def test_text_in_a_language_the_detector_does_not_know_has_no_language(text: str) -> None:
    # Maltese, written with letters no language the detector knows uses (it named these et, lt and fi).
    assert language.detect(text) == language.NONE


def test_polish_keeps_its_language_though_maltese_shares_its_dotted_z() -> None:
    assert language.detect("Dzień dobry, jak się masz? Żółw idzie przez łąkę.").language == "pl"


def test_a_job_expecting_a_language_the_detector_does_not_know_gets_no_language() -> None:
    # Maltese without its own letters: the detector alone would say Slovenian, 0.92 sure.
    text = "Dan huwa test qasir bil-Malti minghajr ittri specjali u jkompli ftit aktar"
    segments = [Segment(text, 0.0, 3.0)]
    transcript = Transcript(text=text, attention="full", timestamps=Timestamps(segment=segments))
    assert language.label(transcript).language is not None
    labelled = language.label(transcript, "mt")
    assert (labelled.language, labelled.language_confidence) == (None, None)
    assert labelled.timestamps.segment[0].language is None
    assert results.language_fields(labelled, "mt") == {
        "language": None,
        "language_confidence": None,
        "language_mismatch": False,
    }
    assert language.label(transcript, "en").language == language.label(transcript).language
