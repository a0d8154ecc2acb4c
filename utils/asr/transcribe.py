"""Model calls: 16 kHz mono arrays in, typed transcripts out, in as few calls as possible.

Each item gets a plan by its length (`utils.asr.plans`). Items with the same plan are sorted by length
and batched (`utils.asr.batching`); windowed items are cut into overlapping windows whose words are
stitched at pauses (`utils.asr.windows`). Running out of GPU memory moves an item down the plans (a
batch first retries its items one by one in the same plan), and every call ends with the model back
in full attention.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

import config
from utils.asr import attention, model, plans, windows
from utils.asr.batching import batches
from utils.asr.plans import FULL, LOCAL, WINDOWED
from utils.asr.records import Char, Segment, Timestamps, Transcript, Word, segments_of
from utils.errors import GpuFailureError, GpuOutOfMemoryError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# Switching attention mode mutates the shared model, so mode switches and inference happen under one lock.
inference_lock = threading.Lock()


def _seconds(value: Any, offset: float) -> float:
    """A time in seconds, shifted by `offset`, rounded to milliseconds as a plain float."""
    return round(float(value) + offset, 3)


def timestamps_of(raw: dict[str, list[dict[str, Any]]], kinds: frozenset[str], offset: float) -> Timestamps:
    """Turns NeMo's timestamp dicts into typed records, shifted by `offset` seconds.

    Args:
        raw: `Hypothesis.timestamp` (`word`, `segment`, `char` lists of dicts).
        kinds: The kinds to convert.
        offset: Seconds added to every time (a window's start).

    Returns:
        The converted kinds; the others stay None.
    """
    found = Timestamps()
    if "word" in kinds:
        found.word = [
            Word(str(i["word"]), _seconds(i["start"], offset), _seconds(i["end"], offset))
            for i in raw.get("word", [])
        ]
    if "segment" in kinds:
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


def run_call(audios: Sequence[np.ndarray], plan: str, kinds: frozenset[str]) -> list[Any]:
    """One model call over a batch in the attention mode of `plan`; the model ends in full attention.

    The caller holds `inference_lock`.

    Args:
        audios: The batch's samples.
        plan: FULL or LOCAL.
        kinds: Timestamp kinds wanted (any: the call computes timestamps).

    Returns:
        NeMo's hypotheses, one per audio.
    """
    import torch

    current = model.loaded()
    attention.set_attention(current.model, plan, current.default_chunking_factor)
    try:
        with torch.inference_mode():
            # timestamps is always passed: None would keep whatever the previous call asked for.
            return current.model.transcribe(
                list(audios), batch_size=len(audios), timestamps=bool(kinds), verbose=False
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
    timestamps = timestamps_of(hypothesis.timestamp, kinds, 0.0) if kinds else Timestamps()
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
    rate = config.SAMPLE_RATE
    seams = [
        windows.find_seam(parts[i].word, planned[i + 1].start / rate, planned[i].end / rate)
        for i in range(len(planned) - 1)
    ]
    words = windows.stitch_words([part.word for part in parts], seams)
    stitched = Timestamps(
        word=words if "word" in kinds else None,
        segment=segments_of(words) if "segment" in kinds else None,
        char=windows.stitch_words([part.char for part in parts], seams) if "char" in kinds else None,
    )
    text = " ".join(word.word for word in words)
    return Transcript(text=text, attention=WINDOWED, timestamps=stitched, windows=len(planned))


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


def _transcribe_windowed(
    audio: np.ndarray, kinds: frozenset[str], window_seconds: float, progress: Progress
) -> Transcript:
    """Transcribes one long item in overlapping windows and stitches the words at pauses."""
    planned = window_plan(audio.size, window_seconds)
    inner = window_kinds(kinds)
    parts: list[Timestamps] = []
    for number, window in enumerate(planned, start=1):
        (hypothesis,) = run_call([audio[window.start : window.end]], LOCAL, inner)
        parts.append(timestamps_of(hypothesis.timestamp, inner, window.start / config.SAMPLE_RATE))
        progress(f"window {number}/{len(planned)} done")
    return stitch(parts, planned, kinds)


def ran_out_of_memory(error: BaseException, plan: str, seconds: float) -> bool:
    """Tells whether torch ran out of memory; if so, frees the cached blocks before the next try.

    Args:
        error: The exception a model call raised.
        plan: The plan the call ran with (for the log).
        seconds: The audio it was given (for the log).

    Returns:
        True for an out-of-memory error.
    """
    import torch

    if not isinstance(error, torch.OutOfMemoryError):
        return False
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    log.warning("out of GPU memory with the %s plan on %.0f s of audio", plan, seconds)
    return True


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


def transcribe_alone(
    audio: np.ndarray,
    first_plan: str,
    kinds: frozenset[str],
    progress: Progress,
    earlier_fallbacks: Sequence[str] = (),
) -> Transcript:
    """Transcribes one item alone, moving to the next plan each time memory runs out.

    Args:
        audio: The item's samples.
        first_plan: The plan to try first.
        kinds: Timestamp kinds.
        progress: Called as windows finish.
        earlier_fallbacks: Fallbacks already taken (a lone item whose batch call failed).

    Returns:
        The transcript, with the fallbacks taken.

    Raises:
        GpuOutOfMemoryError: Not even the smallest windows fit.
    """
    fallbacks = list(earlier_fallbacks)
    plan: str | None = first_plan
    while plan is not None:
        try:
            if plan == WINDOWED:
                result = _transcribe_windowed(audio, kinds, fallback_window_seconds(fallbacks), progress)
            else:
                result = transcript_of(run_call([audio], plan, kinds)[0], plan, kinds)
        except Exception as error:
            if not ran_out_of_memory(error, plan, audio.size / config.SAMPLE_RATE):
                raise
            fallbacks.append(f"{plan}: out of GPU memory")
            plan = plans.next_plan(plan)
            continue
        result.fallbacks = fallbacks
        return result
    raise GpuOutOfMemoryError("the audio did not fit the GPU memory even in windows; try a larger GPU")


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


def plan_of(seconds: float) -> str:
    """The plan for audio of this length on the loaded model and this device's free memory.

    Args:
        seconds: The audio's length.

    Returns:
        FULL, LOCAL or WINDOWED.
    """
    return plans.plan_for(seconds, model.loaded().frame_seconds, model.free_gpu_bytes())


def transcribe_batch(
    audios: Sequence[np.ndarray],
    timestamp_kinds: frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> list[Transcript]:
    """Transcribes 16 kHz mono float32 arrays with the cached model, in as few model calls as possible.

    Args:
        audios: The items' samples at `config.SAMPLE_RATE`.
        timestamp_kinds: Which of "word", "segment", "char" to return; empty for text only.
        progress: Called with a short message as batches and windows finish.

    Returns:
        One Transcript per item, in input order.

    Raises:
        ModelLoadError: The model could not be loaded.
        GpuOutOfMemoryError: An item did not fit even in the smallest windows.
        GpuFailureError: A CUDA error left the GPU unusable; the worker should be replaced.
    """
    report = progress or (lambda message: None)
    durations = [audio.size / config.SAMPLE_RATE for audio in audios]
    item_plans = [plan_of(duration) for duration in durations]
    results: list[Transcript | None] = [None] * len(audios)
    with inference_lock:
        try:
            for plan in (FULL, LOCAL):
                indices = sorted(
                    (i for i, p in enumerate(item_plans) if p == plan), key=durations.__getitem__
                )
                for batch in batches(indices, durations):
                    try:
                        hypotheses = run_call([audios[i] for i in batch], plan, timestamp_kinds)
                        for index, hypothesis in zip(batch, hypotheses, strict=True):
                            results[index] = transcript_of(hypothesis, plan, timestamp_kinds)
                    except Exception as error:
                        if not ran_out_of_memory(error, plan, sum(durations[i] for i in batch)):
                            raise
                        # Alone, an item of a larger batch may fit in the same mode; a lone item moves on.
                        for index in batch:
                            results[index] = _retry_alone(
                                audios[index], plan, len(batch), timestamp_kinds, report
                            )
                    report(f"{sum(r is not None for r in results)}/{len(audios)} items transcribed")
            for index in (i for i, p in enumerate(item_plans) if p == WINDOWED):
                results[index] = transcribe_alone(audios[index], WINDOWED, timestamp_kinds, report)
        except Exception as error:
            if is_fatal_gpu_error(error):
                log.exception("unrecoverable GPU error")
                raise GpuFailureError(
                    "the GPU failed while transcribing; the worker will be replaced"
                ) from error
            raise
    missing = [index for index, result in enumerate(results) if result is None]
    if missing:
        raise RuntimeError(f"items {missing} got no transcript")  # a bug: every plan is handled above
    return cast(list[Transcript], results)


def _retry_alone(
    audio: np.ndarray, plan: str, batch_size: int, kinds: frozenset[str], progress: Progress
) -> Transcript:
    """Retries one item of a batch that ran out of memory: alone in the same plan, or the next one."""
    if batch_size > 1:
        return transcribe_alone(audio, plan, kinds, progress)
    return transcribe_alone(audio, plans.next_plan(plan), kinds, progress, [f"{plan}: out of GPU memory"])
