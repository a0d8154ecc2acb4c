"""Languages told from transcripts (lingua, shipped in its wheel), and how items and segments carry them."""

import pytest

from utils.asr.records import Segment, Timestamps, Transcript
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
