"""Builds the JSON a client gets: per-item fields in the asked formats and the `meta` block (pure)."""

import dataclasses
from dataclasses import dataclass
from typing import Any

from utils.asr.records import CONFIDENCE, Transcript, mean_confidence
from utils.contract.validation import JobRequest, SubtitleOptions
from utils.errors import WorkerError
from utils.job.preparation import PreparedItem
from utils.output import subtitles


@dataclass
class Timings:
    """Seconds spent per stage, summed over items (fetches and conversions run concurrently)."""

    fetch: float = 0.0
    convert: float = 0.0
    load: float = 0.0  # the environment and models made ready (a worker's first job)
    transcribe: float = 0.0
    diarize: float = 0.0  # the diarizer's runs, apart from transcribe
    audio: float = 0.0

    @classmethod
    def of(cls, prepared: list[PreparedItem]) -> "Timings":
        """Sums the fetch and convert seconds and the audio length of prepared items.

        Args:
            prepared: The job's items after fetching and converting.

        Returns:
            The timings, with `load` and `transcribe` still zero.
        """
        return cls(
            fetch=sum(item.fetch_seconds for item in prepared),
            convert=sum(item.convert_seconds for item in prepared),
            audio=sum(item.seconds for item in prepared if item.error is None),
        )


def timestamp_kinds_needed(request: JobRequest) -> frozenset[str]:
    """The kinds the model must produce: what the client asked for, plus words for subtitles, words
    with confidence for `confidence`, words for `diarize` and for `numbers: "digits"` (numbers are
    merged word by word), and words and segments for channels kept apart (they are merged in time order).

    Args:
        request: The validated job.

    Returns:
        The kinds to compute (timestamp kinds, and CONFIDENCE).
    """
    kinds = request.timestamp_kinds
    if request.output_formats & {"srt", "vtt"}:
        kinds |= {"word"}
    if request.confidence:
        kinds |= {"word", CONFIDENCE}
    if request.diarize or request.numbers == "digits":
        kinds |= {"word"}
    if request.channels == "separate":
        kinds |= {"word", "segment"}
    return kinds


def transcript_fields(
    transcript: Transcript,
    duration: float,
    kinds: frozenset[str],
    formats: frozenset[str],
    subtitle_options: SubtitleOptions | None = None,
    confidence: bool = False,
) -> dict[str, Any]:
    """The fields of one transcribed item in the formats the client asked for.

    `text` and `duration` are always there; `timestamps` when asked for; `srt`/`vtt` as strings.

    Args:
        transcript: The item's transcript (with at least the kinds `timestamp_kinds_needed` gives).
        duration: The item's audio length in seconds.
        kinds: Timestamp kinds the client asked for.
        formats: Output formats the client asked for.
        subtitle_options: How cues are shaped; None: the worker's defaults.
        confidence: Whether to add the item's `confidence` (the mean of its words'; None without words).

    Returns:
        The item's fields (`speakers` when it was diarized).
    """
    fields: dict[str, Any] = {"text": transcript.text, "duration": round(duration, 3)}
    if confidence:
        fields["confidence"] = mean_confidence(transcript.timestamps.word or [])
    if transcript.speakers is not None:
        fields["speakers"] = [speaker.as_json() for speaker in transcript.speakers]
    if kinds:
        fields["timestamps"] = transcript.timestamps.as_json(kinds)
    if formats & {"srt", "vtt"}:
        shape = subtitle_options or SubtitleOptions.defaults()
        cues = subtitles.shape_cues(
            transcript.timestamps.word, shape.max_line_chars, shape.max_lines, shape.max_cue_seconds
        )
        if "srt" in formats:
            fields["srt"] = subtitles.to_srt(cues)
        if "vtt" in formats:
            fields["vtt"] = subtitles.to_vtt(cues)
    return fields


def within(transcript: Transcript, duration: float) -> Transcript:
    """A transcript whose times (words, segments, chars, and so cues) lie within `[0, duration]`, and
    whose speakers speak no longer than the item lasts.

    Every path (one call, windows, channels kept apart, the diarizer, vad) ends here, so none of them
    needs to clamp: the model's last frame can end past the audio.

    Args:
        transcript: The item's transcript, on the audio's own timeline.
        duration: The item's length in seconds, as reported.

    Returns:
        The transcript, clamped.
    """
    speakers = transcript.speakers
    if speakers is not None:
        speakers = [dataclasses.replace(s, seconds=min(s.seconds, duration)) for s in speakers]
    return dataclasses.replace(
        transcript, timestamps=transcript.timestamps.clamped(duration), speakers=speakers
    )


def language_fields(transcript: Transcript, expected: str | None) -> dict[str, Any]:
    """An item's detected language, and whether it is the one the caller expected.

    Args:
        transcript: The item's transcript (labelled by `utils.text.language.label`).
        expected: The job's `language`, or None.

    Returns:
        `{"language", "language_confidence"}`, with `language_mismatch` when a language was expected
        (False for an item without text: nothing contradicts it).
    """
    fields: dict[str, Any] = {
        "language": transcript.language,
        "language_confidence": transcript.language_confidence,
    }
    if expected is not None:
        fields["language_mismatch"] = transcript.language is not None and transcript.language != expected
    return fields


def item_meta(transcript: Transcript, audio_start: float = 0.0) -> dict[str, Any]:
    """How one item was transcribed: attention plan, windows, fallbacks taken, channels kept apart.

    Args:
        transcript: The item's transcript.
        audio_start: Seconds after the container's start at which its audio stream begins.

    Returns:
        `{"attention", "channels"?, "windows"?, "fallbacks"?, "batch"?, "audio_start_seconds"?,
        "speech_seconds"?, "numbers"?, "numbers_note"?}`: `batch` counts the items (of any job) that
        shared its model call; `audio_start_seconds` (when not 0) is how much every time was shifted to
        follow the container's timeline; `numbers` (with `numbers: "digits"`) says how numbers were
        written, and `numbers_note` why they stayed words.
    """
    meta: dict[str, Any] = {"attention": transcript.attention}
    if transcript.channels is not None:
        meta["channels"] = transcript.channels
    if audio_start > 0:
        meta["audio_start_seconds"] = audio_start
    if transcript.windows > 1:
        meta["windows"] = transcript.windows
    if transcript.fallbacks:
        meta["fallbacks"] = transcript.fallbacks
    if transcript.batch > 1:
        meta["batch"] = transcript.batch
    if transcript.speech_seconds is not None:
        meta["speech_seconds"] = transcript.speech_seconds
    if transcript.numbers is not None:
        meta["numbers"] = transcript.numbers
    if transcript.numbers_note is not None:
        meta["numbers_note"] = transcript.numbers_note
    return meta


def job_meta(model: dict[str, str], timings: Timings, total_seconds: float) -> dict[str, Any]:
    """The job's `meta` block: model, device, precision, durations and real-time factor.

    Args:
        model: `utils.asr.model.model_info()` (empty when no item reached the model).
        timings: Per-stage seconds.
        total_seconds: Wall-clock seconds of the whole job.

    Returns:
        The meta block.
    """
    return {
        **model,
        "audio_seconds": round(timings.audio, 3),
        "processing_seconds": {
            "fetch": round(timings.fetch, 3),
            "convert": round(timings.convert, 3),
            "load": round(timings.load, 3),
            "transcribe": round(timings.transcribe, 3),
            "diarize": round(timings.diarize, 3),
            "total": round(total_seconds, 3),
        },
        # Processing time per second of audio: 0.01 means 100x faster than real time.
        "real_time_factor": round(total_seconds / timings.audio, 5) if timings.audio else None,
    }


def error_fields(error: WorkerError) -> dict[str, Any]:
    """The failure contract's fields for a worker error.

    Args:
        error: The error; its message is meant for the client.

    Returns:
        `{"success": False, "error": str, "error_type": str}`.
    """
    return {"success": False, "error": str(error), "error_type": error.error_type}


def build_result(
    request: JobRequest,
    prepared: list[PreparedItem],
    transcripts: dict[int, Transcript],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Assembles the success contract: one file's fields, or a batch's per-item results in input order.

    Args:
        request: The validated job.
        prepared: Its items after fetching and converting (samples or error).
        transcripts: The transcript of each prepared item that had samples, by item index.
        meta: The job's meta block.

    Returns:
        The result before the size check.
    """
    entries = []
    for index, item in enumerate(prepared):
        if item.error is not None:
            entry = error_fields(item.error)
        else:
            transcript = within(transcripts[index], round(item.seconds, 3))
            offset = item.stream.start_offset
            if offset > 0:
                # A late-starting sound track: times follow the container, as a player shows them.
                transcript = dataclasses.replace(transcript, timestamps=transcript.timestamps.shifted(offset))
            kinds, formats = request.timestamp_kinds, request.output_formats
            fields = transcript_fields(
                transcript, item.seconds, kinds, formats, request.subtitles, request.confidence
            )
            entry = {"success": True, **fields, **language_fields(transcript, request.language)}
            entry["meta"] = item_meta(transcript, offset)
        if request.items[index].id is not None:
            entry["id"] = request.items[index].id
        entries.append(entry)
    if not request.is_batch:
        return {**entries[0], "meta": {**entries[0]["meta"], **meta}}
    failed = sum(not entry["success"] for entry in entries)
    return {"success": True, "results": entries, "failed": failed, "meta": meta}
