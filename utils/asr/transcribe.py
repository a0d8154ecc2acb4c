"""Model calls and what surrounds them: plans, windows, stitching, out-of-memory detection.

`utils.asr.scheduler` decides which items go into which call; this module runs one call
(`run_call`, which always ends with the model back in full attention) and turns NeMo's hypotheses
into typed transcripts. Windowed items are cut into overlapping windows whose words are stitched at
pauses (`utils.asr.windows`).
"""

import bisect
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import config
from utils.asr import attention, decoding, model, plans, windows
from utils.asr.plans import FULL, WINDOWED
from utils.asr.records import (
    CONFIDENCE,
    LOGPROBS,
    TIMESTAMP_KINDS,
    Char,
    Segment,
    Timestamps,
    Transcript,
    Word,
    segments_of,
)

log = logging.getLogger(__name__)


def _seconds(value: Any, offset: float) -> float:
    """A time in seconds, shifted by `offset`, rounded to milliseconds as a plain float."""
    return round(float(value) + offset, 3)


def _word_confidences(hypothesis: Any, words: int) -> list[float | None]:
    """The hypothesis's word confidences, or Nones where NeMo's count disagrees with the words'."""
    found = getattr(hypothesis, "word_confidence", None) or []
    if len(found) != words:
        # NeMo can return a different count for Parakeet v3 (it groups tokens its own way): the item
        # keeps its words, without confidence.
        log.warning("%d word confidences for %d words; returning the words without them", len(found), words)
        return [None] * words
    return [round(min(max(float(value), 0.0), 1.0), 3) for value in found]


def _letters(text: str) -> str:
    """A word's or token's characters without spaces or SentencePiece's word marker."""
    return "".join(text.replace("\u2581", " ").split())


def token_spans(pieces: list[str], words: list[str]) -> list[tuple[int, int]] | None:
    """Which tokens spell each word: the words are the tokens' characters, in order, regrouped.

    Args:
        pieces: Each token's text, as NeMo's `char` timestamps give it.
        words: The words NeMo built from those tokens.

    Returns:
        `(first, end)` token indices per word (a token without characters goes with the next word,
        trailing ones with the last), or None when the characters do not regroup into the words.
    """
    spans: list[tuple[int, int]] = []
    at = 0
    for word in words:
        target, got, start = _letters(word), "", at
        while at < len(pieces) and len(got) < len(target):
            got += _letters(pieces[at])
            at += 1
        if got != target:
            return None
        spans.append((start, at))
    if any(_letters(piece) for piece in pieces[at:]) or (pieces and not spans):
        return None
    if spans:
        spans[-1] = (spans[-1][0], len(pieces))
    return spans


def spans_by_time(token_starts: list[float], word_starts: list[float]) -> list[tuple[int, int]]:
    """Which tokens go with each word by time: those emitted from its start to the next word's.

    Args:
        token_starts: Each token's start, in order.
        word_starts: Each word's start, in order (at least one word).

    Returns:
        `(first, end)` token indices per word, together every token once (those before the first
        word's start go with it).
    """
    bounds = [0, *(bisect.bisect_left(token_starts, start) for start in word_starts[1:]), len(token_starts)]
    return [(bounds[i], max(bounds[i], bounds[i + 1])) for i in range(len(word_starts))]


def _word_tokens(
    hypothesis: Any, words: list[dict[str, Any]]
) -> list[tuple[tuple[int, ...], tuple[float, ...]] | None]:
    """Each word's token ids and log-probabilities: regrouped by their characters, else by time (Nones
    without log-probabilities)."""
    ids = [int(token) for token in hypothesis.y_sequence]
    logprobs = decoding.token_logprobs(hypothesis)
    chars = hypothesis.timestamp.get("char", [])
    if logprobs is None or not len(logprobs) == len(ids) == len(chars):
        log.warning("no log-probabilities for %d tokens; returning the words without tokens", len(ids))
        return [None] * len(words)
    spans = token_spans(["".join(item["char"]) for item in chars], [str(word["word"]) for word in words])
    if spans is None:
        log.warning("%d tokens do not spell %d words; grouping them by time", len(ids), len(words))
        starts = [float(item["start"]) for item in chars]
        spans = spans_by_time(starts, [float(word["start"]) for word in words]) if words else []
    return [(tuple(ids[a:b]), tuple(logprobs[a:b])) for a, b in spans]


def timestamps_of(hypothesis: Any, kinds: frozenset[str], offset: float) -> Timestamps:
    """Turns a hypothesis's timestamp dicts (and word confidences) into typed records, shifted by `offset`.

    Args:
        hypothesis: One NeMo Hypothesis (`timestamp`: `word`, `segment`, `char` lists of dicts).
        kinds: The kinds to convert, CONFIDENCE for word confidences, LOGPROBS for the words' tokens.
        offset: Seconds added to every time (a window's start).

    Returns:
        The converted kinds; the others stay None. With CONFIDENCE or LOGPROBS, segments are rebuilt
        from the words, so that each carries its words' mean confidence and their tokens.
    """
    raw = hypothesis.timestamp
    found = Timestamps()
    if "word" in kinds:
        items = raw.get("word", [])
        confidences = (
            _word_confidences(hypothesis, len(items)) if CONFIDENCE in kinds else [None] * len(items)
        )
        found.word = [
            Word(str(i["word"]), _seconds(i["start"], offset), _seconds(i["end"], offset), confidence)
            for i, confidence in zip(items, confidences, strict=True)
        ]
        if LOGPROBS in kinds:
            tokens = _word_tokens(hypothesis, items)
            found.word = [
                word if spelled is None else replace(word, tokens=spelled[0], logprobs=spelled[1])
                for word, spelled in zip(found.word, tokens, strict=True)
            ]
    if "segment" in kinds and kinds & {CONFIDENCE, LOGPROBS} and found.word is not None:
        found.segment = segments_of(found.word)
    elif "segment" in kinds:
        found.segment = [
            Segment(str(i["segment"]), _seconds(i["start"], offset), _seconds(i["end"], offset))
            for i in raw.get("segment", [])
        ]
    if "char" in kinds:
        found.char = [
            Char("".join(i["char"]), _seconds(i["start"], offset), _seconds(i["end"], offset))
            for i in raw.get("char", [])
        ]
    return found


def _padded(samples: np.ndarray) -> np.ndarray:
    """Samples padded with trailing silence to `config.MODEL_MIN_INPUT_SECONDS`.

    NeMo pads shorter input itself, on both sides, which would shift every time by half the padding.
    """
    missing = int(config.MODEL_MIN_INPUT_SECONDS * config.SAMPLE_RATE) - samples.size
    return np.pad(samples, (0, missing)) if missing > 0 else samples


def run_call(
    audios: Sequence[np.ndarray],
    plan: str,
    kinds: frozenset[str],
    boost: decoding.Boost | None = None,
    model_name: str | None = None,
) -> list[Any]:
    """One model call over a batch in the attention mode of `plan`; the model ends in full attention.

    Only the scheduler's thread calls this, so calls (and the mode switches inside) never overlap.

    Args:
        audios: The batch's samples.
        plan: FULL or LOCAL.
        kinds: Timestamp kinds wanted (any: the call computes timestamps), CONFIDENCE and LOGPROBS.
        boost: Hotwords for every item of the call, or None.
        model_name: The served model to run (None: the default).

    Returns:
        NeMo's hypotheses, one per audio.
    """
    import torch

    current = model.loaded(model_name)
    attention.set_attention(current.model, plan, current.default_chunking_factor)
    autocast = torch.autocast(
        current.model.device.type,
        dtype=torch.bfloat16,
        enabled=model.compute_dtype(current.model.device.type) == "bfloat16",
    )
    timestamps = bool(kinds & {*TIMESTAMP_KINDS, CONFIDENCE, LOGPROBS})
    options = decoding.options(current.model, timestamps, CONFIDENCE in kinds, boost, LOGPROBS in kinds)
    try:
        with torch.inference_mode(), autocast, options:
            # timestamps is always passed: None would keep whatever the previous call asked for.
            return current.model.transcribe(
                [_padded(samples) for samples in audios],
                batch_size=len(audios),
                timestamps=timestamps,
                verbose=False,
            )
    finally:
        # Every call leaves the default mode behind; a failure here is repaired by the next switch.
        try:
            attention.set_attention(current.model, FULL, current.default_chunking_factor)
        except Exception:
            log.exception("could not restore full attention")


def transcript_of(hypothesis: Any, plan: str, kinds: frozenset[str]) -> Transcript:
    """Builds a Transcript from one NeMo Hypothesis.

    Args:
        hypothesis: One result of `run_call`.
        plan: The plan it ran with.
        kinds: Timestamp kinds to convert.

    Returns:
        The transcript.
    """
    timestamps = timestamps_of(hypothesis, kinds, 0.0) if kinds else Timestamps()
    return Transcript(text=hypothesis.text.strip(), attention=plan, timestamps=timestamps)


def stitch(parts: list[Timestamps], planned: list[windows.Window], kinds: frozenset[str]) -> Transcript:
    """Joins the windows' timestamps (words always among them) into one windowed transcript.

    Args:
        parts: Each window's timestamps in absolute seconds, with words.
        planned: The windows, in samples.
        kinds: The kinds the item asked for.

    Returns:
        The item's transcript.
    """
    seams = _seams(parts, planned)
    words = windows.stitch_words([part.word for part in parts], seams)
    stitched = Timestamps(
        word=words if "word" in kinds else None,
        segment=segments_of(words) if "segment" in kinds else None,
        char=windows.stitch_words([part.char for part in parts], seams) if "char" in kinds else None,
    )
    text = " ".join(word.word for word in words)
    return Transcript(text=text, attention=WINDOWED, timestamps=stitched, windows=len(planned))


def _seams(parts: list[Timestamps], planned: list[windows.Window]) -> list[float]:
    """The seam after each finished window that has a next one (a seam needs only its left window)."""
    rate = config.SAMPLE_RATE
    return [
        windows.find_seam(parts[i].word, planned[i + 1].start / rate, planned[i].end / rate)
        for i in range(min(len(parts), len(planned) - 1))
    ]


def settled_words(parts: list[Timestamps], planned: list[windows.Window]) -> list[Word]:
    """The words of a windowed item that no later window can change: those before the last seam.

    What it returns after each window is a prefix of the stitched transcript's words, so a stream can
    send them as they are settled.

    Args:
        parts: The timestamps of the windows done so far, in absolute seconds, with words.
        planned: All the item's windows.

    Returns:
        The settled words in time order; every word once all windows are done.
    """
    return windows.stitch_words([part.word for part in parts], _seams(parts, planned))


def window_plan(samples: int, window_seconds: float) -> list[windows.Window]:
    """Cuts an item into overlapping windows of at most `window_seconds`.

    Args:
        samples: The item's length in samples.
        window_seconds: Longest window.

    Returns:
        The windows.
    """
    rate = config.SAMPLE_RATE
    overlap = min(config.WINDOW_OVERLAP_SECONDS, window_seconds / 4)
    return windows.plan_windows(samples, int(window_seconds * rate), int(overlap * rate))


def window_kinds(kinds: frozenset[str]) -> frozenset[str]:
    """The kinds each window computes: words always (the seams need them), segments rebuilt after."""
    return (kinds - {"segment"}) | {"word"}


def memory_exhausted(error: BaseException, plan: str, seconds: float) -> str | None:
    """Tells which memory a failed call ran out of; frees cached GPU blocks before the next try.

    Args:
        error: The exception a model call raised.
        plan: The plan the call ran with (for the log).
        seconds: The audio it was given (for the log).

    Returns:
        "GPU memory" (CUDA's out-of-memory error), "memory" (the host's: `MemoryError` or torch's CPU
        allocator), or None for any other error.
    """
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        kind = "GPU memory"
    elif isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in str(error)
    ):
        kind = "memory"
    else:
        return None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    log.warning("out of %s with the %s plan on %.0f s of audio", kind, plan, seconds)
    return kind


def fallback_window_seconds(fallbacks: Sequence[str]) -> float:
    """The window length of the windowed plan: smaller after a local-attention call ran out of memory.

    Args:
        fallbacks: The fallbacks the item already took.

    Returns:
        Seconds per window.
    """
    if fallbacks:
        return min(config.WINDOW_SECONDS, config.FALLBACK_WINDOW_SECONDS)
    return config.WINDOW_SECONDS


def is_fatal_gpu_error(error: BaseException) -> bool:
    """A CUDA error after which the process's GPU context cannot be trusted.

    Args:
        error: An exception from a model call.

    Returns:
        True when the worker should be replaced.
    """
    import torch

    return isinstance(error, torch.AcceleratorError) or (
        isinstance(error, RuntimeError) and "CUDA error" in str(error)
    )


def plausible(transcript: Transcript, seconds: float) -> bool:
    """Whether a transcript's word rate could be speech at all.

    Broken input (noise the model was never meant to hear, a corrupt stream) can make it emit a token
    per frame: hundreds of "words" a second, which is no transcript.

    Args:
        transcript: The item's transcript.
        seconds: The item's audio length.

    Returns:
        False when it has at least `config.IMPLAUSIBLE_MIN_WORDS` words at more than
        `config.MAX_WORDS_PER_SECOND` a second.
    """
    words = len(transcript.text.split())
    return words < config.IMPLAUSIBLE_MIN_WORDS or words <= config.MAX_WORDS_PER_SECOND * seconds


def call_limit_seconds(model_name: str | None = None) -> float | None:
    """The most audio one model call may take on the model's device, so that a deadline or a
    cancellation, checked between calls, waits for at most one call.

    Args:
        model_name: The served model (None: the default).

    Returns:
        `CPU_MAX_CALL_SECONDS` on a CPU; None on a GPU, whose calls are short for any plan.
    """
    return config.CPU_MAX_CALL_SECONDS if model.loaded(model_name).model.device.type == "cpu" else None


def plan_of(seconds: float, model_name: str | None = None) -> str:
    """The plan for audio of this length on a served model and this device's free memory.

    Args:
        seconds: The audio's length.
        model_name: The served model (None: the default).

    Returns:
        FULL, LOCAL or WINDOWED.
    """
    return plans.plan_for(seconds, model.loaded(model_name).frame_seconds, model.free_memory_bytes())
