"""The NeMo Parakeet model: loaded once per process, run on 16 kHz mono arrays in as few calls as possible.

This is the only module that imports torch and NeMo, and only when a model is first needed: importing
`nemo.collections.asr` takes seconds, and the rest of the worker must stay importable without it.

Each item gets a plan by its length: full attention (quadratic; up to 24 min and only when it fits the
free GPU memory), local attention (linear; up to 3 h), or overlapping windows stitched by word
timestamps (beyond). Items with the same plan are sorted by length and batched. Running out of GPU
memory moves an item down that list (full → local → windows), and every job ends with the model back
in full attention, so no job inherits another's mode.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

import config
from utils import windows
from utils.errors import GpuFailureError, GpuOutOfMemoryError, ModelLoadError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

_load_lock = threading.Lock()
# Switching attention mode mutates the shared model, so mode switches and inference happen under one lock.
_inference_lock = threading.Lock()
_model: Any = None
_model_name: str | None = None
# The subsampling chunking factor the model was loaded with; full attention restores it.
_default_chunking_factor: int | None = None

FULL, LOCAL, WINDOWED = "full", "local", "windowed"
PLANS = (FULL, LOCAL, WINDOWED)


@dataclass(frozen=True)
class AttentionMode:
    """How the encoder attends: full (quadratic) or local windows (linear in length)."""

    model: str
    context: tuple[int, int]


ATTENTION = {
    FULL: AttentionMode(config.FULL_ATTENTION_MODEL, tuple(config.FULL_ATTENTION_CONTEXT)),
    LOCAL: AttentionMode(config.LOCAL_ATTENTION_MODEL, tuple(config.LOCAL_ATTENTION_CONTEXT)),
}


@dataclass
class Transcript:
    """One item's transcription in plain Python types, times in seconds rounded to milliseconds."""

    text: str
    attention: str
    timestamps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # How the item got here when memory ran out, e.g. ["full: out of GPU memory"].
    fallbacks: list[str] = field(default_factory=list)
    windows: int = 1


def _device() -> str:
    """Returns "cuda" or "cpu" according to `config.DEVICE` and what torch sees."""
    if config.DEVICE != "auto":
        return config.DEVICE
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(name_or_path: str) -> Any:
    """Loads a Parakeet model the way users run it: a hub name or a `.nemo` file.

    Args:
        name_or_path: A Hugging Face model name (e.g. `nvidia/parakeet-tdt-0.6b-v3`, fetched with
            `from_pretrained` into `HF_HOME`) or a path to a `.nemo` file (`restore_from`).

    Returns:
        The NeMo ASR model in eval mode on the configured device.

    Raises:
        ModelLoadError: The file is missing or the model cannot be restored or downloaded.
    """
    import nemo.collections.asr as nemo_asr

    device = _device()
    is_path = name_or_path.endswith(".nemo") or Path(name_or_path).exists()
    try:
        if is_path:
            if not Path(name_or_path).is_file():
                # The path is the operator's; it goes to the log, not to the client.
                log.error("PARAKEET_MODEL file %s does not exist", name_or_path)
                raise ModelLoadError("the PARAKEET_MODEL file does not exist on this worker")
            model = nemo_asr.models.ASRModel.restore_from(name_or_path, map_location=device)
        else:
            model = nemo_asr.models.ASRModel.from_pretrained(model_name=name_or_path, map_location=device)
    except ModelLoadError:
        raise
    except Exception as exc:
        log.exception("loading model %s failed", name_or_path)
        raise ModelLoadError(f"could not load the model ({type(exc).__name__}); see the worker log") from exc
    model.eval()
    return model


def get_model() -> Any:
    """Returns the process-wide model named by `config.PARAKEET_MODEL`, loading it on first use.

    Returns:
        The cached NeMo model.

    Raises:
        ModelLoadError: Loading failed; the next call tries again.
    """
    global _model, _model_name, _default_chunking_factor
    with _load_lock:
        if _model is None or _model_name != config.PARAKEET_MODEL:
            _model = load_model(config.PARAKEET_MODEL)
            _model_name = config.PARAKEET_MODEL
            _default_chunking_factor = _model.encoder.pre_encode.subsampling_conv_chunking_factor
            log.info("model %s loaded on %s", _model_name, _model.device)
        return _model


def model_info() -> dict[str, str]:
    """Describes the loaded model for a result's `meta` block.

    Returns:
        `{"model", "device", "precision"}`.
    """
    model = get_model()
    return {
        "model": str(_model_name),
        "device": str(model.device),
        "precision": str(model.dtype).split(".")[-1],
    }


def current_attention(model: Any) -> tuple[str, tuple[int, int], int]:
    """Reads the encoder's attention model, context and subsampling chunking factor.

    Args:
        model: A loaded NeMo model.

    Returns:
        `(self_attention_model, (left, right) context, chunking factor)`.
    """
    encoder = model.encoder
    return (
        encoder.self_attention_model,
        tuple(encoder.att_context_size),
        encoder.pre_encode.subsampling_conv_chunking_factor,
    )


def set_attention(model: Any, plan: str) -> None:
    """Puts the encoder into the attention mode of `plan`, whatever state it was left in.

    `change_attention_model` without a context keeps the old one, so the context is always passed.

    Args:
        model: A loaded NeMo model.
        plan: FULL or LOCAL.
    """
    mode = ATTENTION[plan]
    chunking = config.LOCAL_SUBSAMPLING_CHUNKING_FACTOR if plan == LOCAL else _default_chunking_factor
    if current_attention(model) == (mode.model, mode.context, chunking):
        return
    model.change_attention_model(mode.model, list(mode.context))
    model.change_subsampling_conv_chunking_factor(chunking)
    log.info("attention set to %s %s, subsampling chunking %s", mode.model, list(mode.context), chunking)


def _free_gpu_bytes() -> int | None:
    """Free GPU memory in bytes, or None when running on the CPU."""
    import torch

    if _device() != "cuda":
        return None
    return torch.cuda.mem_get_info()[0]


def full_attention_fits(duration_seconds: float, model: Any) -> bool:
    """Estimates whether full attention over this much audio fits the free GPU memory.

    Args:
        duration_seconds: Length of the audio.
        model: The loaded model (for its encoder frame length).

    Returns:
        True on the CPU, or when the quadratic estimate fits the free GPU memory.
    """
    free = _free_gpu_bytes()
    if free is None:
        return True
    frame_seconds = model.cfg.preprocessor.window_stride * model.encoder.subsampling_factor
    frames = duration_seconds / frame_seconds
    return (
        config.FULL_ATTENTION_BYTES_PER_FRAME_SQUARED * frames**2 <= free * config.GPU_MEMORY_SAFETY_FRACTION
    )


def plan_for(duration_seconds: float, model: Any) -> str:
    """Chooses how to transcribe audio of this length.

    Args:
        duration_seconds: Length of the audio.
        model: The loaded model.

    Returns:
        FULL, LOCAL or WINDOWED.
    """
    if duration_seconds <= config.FULL_ATTENTION_MAX_SECONDS and full_attention_fits(duration_seconds, model):
        return FULL
    if duration_seconds <= config.LOCAL_ATTENTION_MAX_SECONDS:
        return LOCAL
    return WINDOWED


def _seconds(value: Any, offset: float = 0.0) -> float:
    """A time in seconds, shifted by `offset`, rounded to milliseconds as a plain float."""
    return round(float(value) + offset, 3)


def _plain_timestamps(raw: dict[str, list[dict[str, Any]]], kinds: frozenset[str], offset: float) -> dict:
    """Turns NeMo's timestamp dicts into the output contract's plain items."""
    fields = {"word": ("word", "word"), "segment": ("segment", "text"), "char": ("char", "char")}
    result: dict[str, list[dict[str, Any]]] = {}
    for kind in sorted(kinds):
        source, target = fields[kind]
        result[kind] = [
            {
                target: "".join(item[source]) if kind == "char" else str(item[source]),
                "start": _seconds(item["start"], offset),
                "end": _seconds(item["end"], offset),
            }
            for item in raw.get(kind, [])
        ]
    return result


def _run(model: Any, audios: Sequence[np.ndarray], plan: str, kinds: frozenset[str]) -> list[Any]:
    """One model call over a batch, in the attention mode of `plan`."""
    import torch

    set_attention(model, plan)
    with torch.inference_mode():
        # timestamps is always passed: None would keep whatever the previous call asked for.
        return model.transcribe(list(audios), batch_size=len(audios), timestamps=bool(kinds), verbose=False)


def _batches(indices: list[int], durations: list[float]) -> list[list[int]]:
    """Splits length-sorted item indices into batches bounded in count and in total audio."""
    batches: list[list[int]] = []
    for index in indices:
        batch = batches[-1] if batches else None
        longest = max([durations[i] for i in batch] + [durations[index]]) if batch else 0.0
        fits = batch is not None and len(batch) < config.BATCH_SIZE
        if fits and longest * (len(batch) + 1) <= config.BATCH_MAX_AUDIO_SECONDS:
            batch.append(index)
        else:
            batches.append([index])
    return batches


def _free_gpu_cache() -> None:
    """Returns cached blocks to the GPU after an out-of-memory error, before the next try."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _is_out_of_memory(error: BaseException) -> bool:
    """Whether torch ran out of (GPU) memory."""
    import torch

    return isinstance(error, torch.OutOfMemoryError)


def _is_fatal_gpu_error(error: BaseException) -> bool:
    """A CUDA error after which the process's GPU context cannot be trusted."""
    import torch

    return isinstance(error, torch.AcceleratorError) or (
        isinstance(error, RuntimeError) and "CUDA error" in str(error)
    )


def _from_hypothesis(hypothesis: Any, plan: str, kinds: frozenset[str]) -> Transcript:
    """Builds a Transcript from one NeMo Hypothesis."""
    timestamps = _plain_timestamps(hypothesis.timestamp, kinds, 0.0) if kinds else {}
    return Transcript(text=hypothesis.text.strip(), attention=plan, timestamps=timestamps)


def _transcribe_windowed(
    model: Any, audio: np.ndarray, kinds: frozenset[str], window_seconds: float, progress: Progress
) -> Transcript:
    """Transcribes one long item in overlapping windows and stitches the words at pauses."""
    rate = config.SAMPLE_RATE
    planned = windows.plan_windows(
        audio.size,
        int(window_seconds * rate),
        int(min(config.WINDOW_OVERLAP_SECONDS, window_seconds / 4) * rate),
    )
    inner_kinds = (kinds - {"segment"}) | {"word"}
    parts: list[dict[str, list[dict[str, Any]]]] = []
    for number, window in enumerate(planned, start=1):
        (hypothesis,) = _run(model, [audio[window.start : window.end]], LOCAL, inner_kinds)
        parts.append(_plain_timestamps(hypothesis.timestamp, inner_kinds, window.start / rate))
        progress(f"window {number}/{len(planned)} done")
    seams = [
        windows.find_seam(parts[i]["word"], planned[i + 1].start / rate, planned[i].end / rate)
        for i in range(len(planned) - 1)
    ]
    words = windows.stitch_words([part["word"] for part in parts], seams)
    stitched = {kind: windows.stitch_words([part[kind] for part in parts], seams) for kind in inner_kinds}
    stitched["segment"] = windows.words_to_segments(words)
    text = " ".join(word["word"] for word in words)
    timestamps = {kind: stitched[kind] for kind in kinds}
    return Transcript(text=text, attention=WINDOWED, timestamps=timestamps, windows=len(planned))


def _transcribe_with_fallbacks(
    model: Any,
    audio: np.ndarray,
    first_plan: str,
    kinds: frozenset[str],
    progress: Progress,
    earlier_fallbacks: Sequence[str] = (),
) -> Transcript:
    """Transcribes one item alone, moving to the next plan each time the GPU runs out of memory."""
    fallbacks = list(earlier_fallbacks)
    for plan in PLANS[PLANS.index(first_plan) :]:
        try:
            if plan == WINDOWED:
                # Windows as a fallback must be smaller than the local-attention call that failed.
                window = (
                    min(config.WINDOW_SECONDS, config.FALLBACK_WINDOW_SECONDS)
                    if fallbacks
                    else config.WINDOW_SECONDS
                )
                result = _transcribe_windowed(model, audio, kinds, window, progress)
            else:
                result = _from_hypothesis(_run(model, [audio], plan, kinds)[0], plan, kinds)
        except Exception as error:
            if not _is_out_of_memory(error):
                raise
            _free_gpu_cache()
            log.warning(
                "out of GPU memory with the %s plan on %.0f s of audio", plan, audio.size / config.SAMPLE_RATE
            )
            fallbacks.append(f"{plan}: out of GPU memory")
            continue
        result.fallbacks = fallbacks
        return result
    raise GpuOutOfMemoryError("the audio did not fit the GPU memory even in windows; try a larger GPU")


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
    model = get_model()
    durations = [audio.size / config.SAMPLE_RATE for audio in audios]
    plans = [plan_for(duration, model) for duration in durations]
    results: list[Transcript | None] = [None] * len(audios)
    with _inference_lock:
        try:
            for plan in (FULL, LOCAL):
                indices = sorted((i for i, p in enumerate(plans) if p == plan), key=durations.__getitem__)
                for batch in _batches(indices, durations):
                    try:
                        hypotheses = _run(model, [audios[i] for i in batch], plan, timestamp_kinds)
                        for index, hypothesis in zip(batch, hypotheses, strict=True):
                            results[index] = _from_hypothesis(hypothesis, plan, timestamp_kinds)
                    except Exception as error:
                        if not _is_out_of_memory(error):
                            raise
                        _free_gpu_cache()
                        # Alone, an item of a larger batch may fit in the same mode; a lone item moves on.
                        retry_plan = plan if len(batch) > 1 else PLANS[PLANS.index(plan) + 1]
                        noted = [] if len(batch) > 1 else [f"{plan}: out of GPU memory"]
                        for index in batch:
                            results[index] = _transcribe_with_fallbacks(
                                model, audios[index], retry_plan, timestamp_kinds, report, noted
                            )
                    report(f"{sum(r is not None for r in results)}/{len(audios)} items transcribed")
            for index in (i for i, p in enumerate(plans) if p == WINDOWED):
                results[index] = _transcribe_with_fallbacks(
                    model, audios[index], WINDOWED, timestamp_kinds, report
                )
        except Exception as error:
            if _is_fatal_gpu_error(error):
                log.exception("unrecoverable GPU error")
                raise GpuFailureError(
                    "the GPU failed while transcribing; the worker will be replaced"
                ) from error
            raise
        finally:
            # Every job leaves the default mode behind; a failure here is repaired by the next job's switch.
            try:
                set_attention(model, FULL)
            except Exception:
                log.exception("could not restore full attention")
    return cast(list[Transcript], results)
