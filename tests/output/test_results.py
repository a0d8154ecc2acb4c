"""utils/output/results.py: the result JSON of single and batch jobs, from typed transcripts (pure)."""

import numpy as np

from utils.asr.records import Char, Segment, SpeakerTime, Timestamps, Transcript, Word
from utils.audio.decoding import StreamInfo
from utils.contract.validation import parse_input
from utils.errors import NoAudioStreamError
from utils.job.preparation import PreparedItem
from utils.output import results

WORDS = [Word("one", 0.08, 0.4), Word("two.", 0.5, 0.9)]
TRANSCRIPT = Transcript(
    text="one two.",
    attention="full",
    timestamps=Timestamps(word=WORDS, segment=[Segment("one two.", 0.08, 0.9)]),
    language="en",
    language_confidence=0.99,
)
SAMPLES = np.zeros(16_000, dtype=np.float32)  # one second
META = {"model": "m", "audio_seconds": 1.0}


def test_a_single_item_gets_its_fields_and_the_job_meta() -> None:
    request = parse_input({"audio_base64": "AAAA", "timestamps": ["word"], "output_format": ["json", "srt"]})
    result = results.build_result(
        request, [PreparedItem(samples=SAMPLES, seconds=1.0)], {0: TRANSCRIPT}, META
    )
    assert result == {
        "success": True,
        "text": "one two.",
        "duration": 1.0,
        "timestamps": {
            "word": [{"word": "one", "start": 0.08, "end": 0.4}, {"word": "two.", "start": 0.5, "end": 0.9}]
        },
        "srt": "1\n00:00:00,080 --> 00:00:00,900\none two.\n\n",
        "language": "en",
        "language_confidence": 0.99,
        "meta": {"attention": "full", **META},
    }


def test_a_batch_keeps_input_order_ids_and_per_item_errors() -> None:
    request = parse_input({"audios": [{"id": "a", "audio_base64": "AAAA"}, {"audio_url": "https://h/x"}]})
    prepared = [
        PreparedItem(samples=SAMPLES, seconds=1.0),
        PreparedItem(error=NoAudioStreamError("the file has no audio stream")),
    ]
    result = results.build_result(request, prepared, {0: TRANSCRIPT}, META)
    assert result["failed"] == 1
    assert result["results"] == [
        {
            "success": True,
            "text": "one two.",
            "duration": 1.0,
            "language": "en",
            "language_confidence": 0.99,
            "meta": {"attention": "full"},
            "id": "a",
        },
        {"success": False, "error": "the file has no audio stream", "error_type": "no_audio_stream"},
    ]
    assert result["meta"] == META


def test_subtitles_and_confidence_need_words_even_when_the_client_asked_for_none() -> None:
    def needed(**fields: object) -> frozenset[str]:
        return results.timestamp_kinds_needed(parse_input({"audio_url": "s3://b/k", **fields}))

    assert needed(output_format="srt") == {"word"}
    assert needed(timestamps=["segment"]) == {"segment"}
    assert needed(confidence=True) == {"word", "confidence"}
    assert needed() == frozenset()


def test_fallbacks_and_windows_appear_in_the_item_meta() -> None:
    windowed = Transcript(text="", attention="windowed", fallbacks=["local: out of GPU memory"], windows=3)
    assert results.item_meta(windowed) == {
        "attention": "windowed",
        "windows": 3,
        "fallbacks": ["local: out of GPU memory"],
    }


def test_language_fields_say_a_mismatch_only_when_a_language_was_expected() -> None:
    english = Transcript(text="one two", attention="full", language="en", language_confidence=0.98)
    assert results.language_fields(english, None) == {"language": "en", "language_confidence": 0.98}
    assert results.language_fields(english, "en")["language_mismatch"] is False
    assert results.language_fields(english, "de")["language_mismatch"] is True
    silent = Transcript(text="", attention="full")
    assert results.language_fields(silent, "de") == {
        "language": None,
        "language_confidence": None,
        "language_mismatch": False,
    }


def test_times_past_the_audio_are_clamped_to_it_then_follow_a_late_start() -> None:
    past = Transcript(
        text="seven",
        attention="full",
        timestamps=Timestamps(
            word=[Word("seven", -0.01, 0.32)],
            segment=[Segment("seven", -0.01, 0.32)],
            char=[Char("n", 0.31, 0.32)],
        ),
        speakers=[SpeakerTime("S1", 0.4)],
    )
    kinds = ["word", "segment", "char"]
    request = parse_input({"audio_base64": "AAAA", "timestamps": kinds, "output_format": ["json", "srt"]})
    item = PreparedItem(samples=SAMPLES, seconds=0.3)
    result = results.build_result(request, [item], {0: past}, META)
    assert result["timestamps"] == {
        "char": [{"char": "n", "start": 0.3, "end": 0.3}],
        "segment": [{"text": "seven", "start": 0.0, "end": 0.3}],
        "word": [{"word": "seven", "start": 0.0, "end": 0.3}],
    }
    assert result["srt"] == "1\n00:00:00,000 --> 00:00:00,300\nseven\n\n"
    assert result["speakers"] == [{"speaker": "S1", "seconds": 0.3}]
    item.stream = StreamInfo(start_offset=10.0)
    late = results.build_result(request, [item], {0: past}, META)
    assert late["timestamps"]["word"] == [{"word": "seven", "start": 10.0, "end": 10.3}]
