"""The queue's success contract, rendered as OpenAI's transcription responses and stream events (pure).

Every body and event has the fields the `openai` package's types require, filled from what the
worker computed; our extras (`confidence`, `speaker`, `channel`, ...) sit inside the entries that have
them. A `verbose_json` segment's Whisper fields (the job ran with `segment_details`):

- `tokens`: the model's token ids for the segment's words, as the decoder emitted them;
- `avg_logprob`: the mean natural-log probability of those tokens (`utils.asr.decoding`);
- `no_speech_prob`: Silero's doubt that the segment's span holds speech (`utils.asr.vad`);
- `seek`: the segment's start in 10 ms frames (Whisper's unit), `round(start * 100)`;
- `temperature`: 0.0, as decoding is greedy;
- `compression_ratio`: as Whisper computes it, UTF-8 bytes of the text over their zlib-compressed bytes.
"""

import json
import zlib
from dataclasses import dataclass
from typing import Any

SUBTITLE_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Rendered:
    """A response body: JSON, or text with its content type."""

    json: dict[str, Any] | None = None
    text: str | None = None
    media_type: str = TEXT_TYPE


def usage(result: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage block for audio billed by duration.

    Args:
        result: The success contract of one audio.

    Returns:
        `{"type": "duration", "seconds": ...}`.
    """
    return {"type": "duration", "seconds": result["duration"]}


def _entry(item: dict[str, Any], text_key: str) -> dict[str, Any]:
    """A word or segment of the contract with OpenAI's keys first, our extras after."""
    entry = {text_key: item["word"] if text_key == "word" else item["text"], "start": item["start"]}
    entry["end"] = item["end"]
    extras = ("confidence", "speaker", "channel", "language")
    entry.update({key: value for key, value in item.items() if key in extras})
    return entry


def compression_ratio(text: str) -> float:
    """Whisper's compression ratio of a text: its UTF-8 bytes over their zlib-compressed bytes.

    Args:
        text: A segment's text.

    Returns:
        The ratio (about 1 for ordinary text; repetitive text scores higher).
    """
    encoded = text.encode("utf-8")
    return len(encoded) / len(zlib.compress(encoded))


def verbose_segment(index: int, segment: dict[str, Any]) -> dict[str, Any]:
    """One segment of `verbose_json`: OpenAI's (Whisper's) fields, then our extras.

    Args:
        index: Its place in the transcript.
        segment: The contract's segment, with `tokens`, `avg_logprob` and `no_speech_prob` when the job
            computed them (`segment_details`).

    Returns:
        `{"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
        "compression_ratio", "no_speech_prob", ...}`.
    """
    body: dict[str, Any] = {
        "id": index,
        "seek": round(segment["start"] * 100),
        "start": segment["start"],
        "end": segment["end"],
        "text": segment["text"],
        "tokens": list(segment.get("tokens", ())),
        "temperature": 0.0,
    }
    if "avg_logprob" in segment:
        body["avg_logprob"] = float(segment["avg_logprob"])
    body["compression_ratio"] = compression_ratio(segment["text"])
    if "no_speech_prob" in segment:
        body["no_speech_prob"] = float(segment["no_speech_prob"])
    extras = {key: value for key, value in _entry(segment, "text").items() if key not in body}
    return {**body, **extras}


def verbose_json(result: dict[str, Any], granularities: frozenset[str]) -> dict[str, Any]:
    """OpenAI's `verbose_json`.

    Args:
        result: The success contract, with segment (and word, when asked) timestamps.
        granularities: "segment" and/or "word".

    Returns:
        `{"task", "language", "duration", "text", "segments"?, "words"?, "usage"}` (+ `confidence`,
        `speakers`, `language_confidence`, `language_mismatch`).
    """
    body: dict[str, Any] = {
        "task": "transcribe",
        # OpenAI's type wants a string: "" when no language was detected (no text).
        "language": result["language"] or "",
        "duration": result["duration"],
        "text": result["text"],
    }
    timestamps = result["timestamps"]
    if "segment" in granularities:
        body["segments"] = [
            verbose_segment(index, segment) for index, segment in enumerate(timestamps["segment"])
        ]
    if "word" in granularities:
        body["words"] = [_entry(word, "word") for word in timestamps["word"]]
    extras = ("confidence", "speakers", "language_confidence", "language_mismatch")
    body.update({key: result[key] for key in extras if key in result})
    body["usage"] = usage(result)
    return body


def diarized_segment(index: int, segment: dict[str, Any]) -> dict[str, Any]:
    """One segment of `diarized_json`, which is also the stream's `transcript.text.segment` event.

    Args:
        index: Its place in the transcript.
        segment: The contract's segment (with `speaker`).

    Returns:
        `{"type", "id", "start", "end", "text", "speaker", ...}`.
    """
    return {"type": "transcript.text.segment", "id": f"seg_{index}", **_entry(segment, "text")}


def diarized_json(result: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's `diarized_json`.

    Args:
        result: The success contract of a diarized job, with segment timestamps.

    Returns:
        `{"task", "duration", "text", "segments", "usage"}` (+ `confidence`, `speakers`).
    """
    segments = [diarized_segment(index, item) for index, item in enumerate(result["timestamps"]["segment"])]
    body = {
        "task": "transcribe",
        "duration": result["duration"],
        "text": result["text"],
        "segments": segments,
    }
    body.update({key: result[key] for key in ("confidence", "speakers") if key in result})
    body["usage"] = usage(result)
    return body


def render(result: dict[str, Any], response_format: str, granularities: frozenset[str]) -> Rendered:
    """A success contract in the response format asked for.

    Args:
        result: The success contract of one audio.
        response_format: One of `openai_params.RESPONSE_FORMATS`.
        granularities: For `verbose_json`.

    Returns:
        The body.
    """
    if response_format == "text":
        return Rendered(text=result["text"])
    if response_format in SUBTITLE_TYPES:
        return Rendered(text=result[response_format], media_type=SUBTITLE_TYPES[response_format])
    if response_format == "verbose_json":
        return Rendered(json=verbose_json(result, granularities))
    if response_format == "diarized_json":
        return Rendered(json=diarized_json(result))
    body = {"text": result["text"]}
    if "confidence" in result:
        body["confidence"] = result["confidence"]
    return Rendered(json={**body, "usage": usage(result)})


def sse(event: dict[str, Any]) -> str:
    """One server-sent event carrying `event` as JSON.

    Args:
        event: The event's data.

    Returns:
        The `data: ...` block.
    """
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


def delta_event(text: str) -> dict[str, Any]:
    """A `transcript.text.delta` event.

    Args:
        text: Text to append to what came before (with its leading space).

    Returns:
        The event.
    """
    return {"type": "transcript.text.delta", "delta": text}


def done_events(result: dict[str, Any], sent_text: str, response_format: str) -> list[dict[str, Any]]:
    """The events that end a stream: the text not yet sent as deltas, segments, and `done`.

    Args:
        result: The success contract.
        sent_text: The text the deltas already carried.
        response_format: The stream's response format (`diarized_json` sends segment events).

    Returns:
        The events in order.
    """
    text = result["text"]
    events = []
    rest = text[len(sent_text) :] if text.startswith(sent_text) else ""
    if rest:
        events.append(delta_event(rest))
    if response_format == "diarized_json":
        events += [
            diarized_segment(index, item) for index, item in enumerate(result["timestamps"]["segment"])
        ]
    # OpenAI's done event knows only usage in tokens; the audio's seconds go in our `duration` instead.
    events.append({"type": "transcript.text.done", "text": text, "duration": result["duration"]})
    return events
