"""Which language a transcript is in, told from its text (the model neither takes nor returns one).

Lingua (`lingua-language-detector`) ships its models in its wheel, so nothing is downloaded. It runs in
its low-accuracy mode (trigrams only): about 40 MB and 0.2 s to load instead of 600 MB and 5 s, and still
sure of itself on a sentence or more. It knows every language Parakeet v3 transcribes but Maltese, and
would name a Maltese transcript confidently as the nearest language it knows (Estonian, Finnish,
Lithuanian...): text written with letters only Maltese uses (ċ ġ ħ), and any transcript of a job that
expects a language the detector does not know, has no language rather than a wrong one. Text without
letters has no language.
"""

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any

import config
from utils.asr.records import Segment, Transcript

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# A segment is said to be in another language only when the detector is this sure of it: a few words
# alone are easily taken for a neighbouring language.
SEGMENT_MIN_CONFIDENCE = 0.9
SEGMENT_MIN_WORDS = 3
# Letters of model languages the detector does not know, written by none of those it knows.
UNKNOWN_LANGUAGE_LETTERS = {"mt": "ċġħĊĠĦ"}
_UNKNOWN_LETTER = re.compile(f"[{''.join(UNKNOWN_LANGUAGE_LETTERS.values())}]")


@dataclass(frozen=True)
class Detection:
    """A text's most likely language (ISO 639-1) and how sure the detector is, in [0, 1]."""

    language: str | None
    confidence: float | None


NONE = Detection(None, None)


def detectable() -> tuple[str, ...]:
    """The model's languages that the detector knows.

    Returns:
        ISO 639-1 codes.
    """
    from lingua import IsoCode639_1

    return tuple(code for code in config.MODEL_LANGUAGES if hasattr(IsoCode639_1, code.upper()))


@functools.cache
def _detector() -> Any:
    """The detector for the model's languages, built on first use (then kept for the process)."""
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in detectable()]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode().build()


def detect(text: str) -> Detection:
    """The language of a transcript.

    Args:
        text: The transcript (or a segment of it).

    Returns:
        The detection; `NONE` for text without letters, and for text in a language the detector does
        not know (written with its letters).
    """
    if not _LETTER.search(text) or _UNKNOWN_LETTER.search(text):
        return NONE
    values = _detector().compute_language_confidence_values(text)
    if not values:
        return NONE
    best = values[0]
    return Detection(best.language.iso_code_639_1.name.lower(), round(float(best.value), 3))


def normalized(code: str) -> str:
    """A language code as the worker compares it: lower case, without a region (`pt-BR` → `pt`).

    Args:
        code: What the client sent.

    Returns:
        The base code.
    """
    return code.strip().lower().replace("_", "-").split("-")[0]


def label(transcript: Transcript, expected: str | None = None) -> Transcript:
    """A transcript with its language, and its segments' where they are surely another.

    Args:
        transcript: An item's final transcript.
        expected: The job's `language` (normalized), or None. One the detector does not know (Maltese)
            leaves the transcript without a language: the detector would name another, confidently.

    Returns:
        The same transcript with `language` and `language_confidence` set (and `language` on segments).
    """
    found = NONE if expected is not None and expected not in detectable() else detect(transcript.text)
    segments = transcript.timestamps.segment
    if segments is not None and found.language is not None:
        segments = [_segment_language(segment, found.language) for segment in segments]
    timestamps = dataclasses.replace(transcript.timestamps, segment=segments)
    return dataclasses.replace(
        transcript, timestamps=timestamps, language=found.language, language_confidence=found.confidence
    )


def _segment_language(segment: Segment, item_language: str) -> Segment:
    """A segment with its own language, when the detector is sure it is not the item's."""
    if len(segment.text.split()) < SEGMENT_MIN_WORDS:
        return segment
    found = detect(segment.text)
    if found.language in (None, item_language) or (found.confidence or 0) < SEGMENT_MIN_CONFIDENCE:
        return segment
    return dataclasses.replace(segment, language=found.language)
