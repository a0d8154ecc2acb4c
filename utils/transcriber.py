"""The NeMo Parakeet model: loaded once per process, switched between attention modes, run on arrays.

This is the only module that imports torch and NeMo, and only when a model is first needed: importing
`nemo.collections.asr` takes seconds, and the rest of the worker (validation, fetching, ffmpeg) must stay
importable and fast without it.
"""

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import config
from utils.errors import ModelLoadError

log = logging.getLogger(__name__)

_load_lock = threading.Lock()
# Switching attention mode mutates the shared model, so mode switch and inference happen as one step.
_inference_lock = threading.Lock()
_model: Any = None
_model_name: str | None = None
# The subsampling chunking factor the model was loaded with; full attention restores it.
_default_chunking_factor: int | None = None


@dataclass(frozen=True)
class AttentionMode:
    """How the encoder attends: full (quadratic) or local windows (linear in length)."""

    name: str
    model: str
    context: tuple[int, int]


FULL_ATTENTION = AttentionMode("full", config.FULL_ATTENTION_MODEL, tuple(config.FULL_ATTENTION_CONTEXT))
LOCAL_ATTENTION = AttentionMode("local", config.LOCAL_ATTENTION_MODEL, tuple(config.LOCAL_ATTENTION_CONTEXT))


@dataclass
class Transcript:
    """One transcription in plain Python types, times in seconds rounded to milliseconds."""

    text: str
    attention: str
    timestamps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def attention_mode_for(duration_seconds: float) -> AttentionMode:
    """Picks the attention mode for audio of the given length.

    Args:
        duration_seconds: Length of the audio.

    Returns:
        FULL_ATTENTION up to `config.FULL_ATTENTION_MAX_SECONDS`, LOCAL_ATTENTION beyond.
    """
    return FULL_ATTENTION if duration_seconds <= config.FULL_ATTENTION_MAX_SECONDS else LOCAL_ATTENTION


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
                raise ModelLoadError(f"PARAKEET_MODEL file {name_or_path!r} does not exist")
            model = nemo_asr.models.ASRModel.restore_from(name_or_path, map_location=device)
        else:
            model = nemo_asr.models.ASRModel.from_pretrained(model_name=name_or_path, map_location=device)
    except ModelLoadError:
        raise
    except Exception as exc:
        log.exception("loading model %s failed", name_or_path)
        raise ModelLoadError(f"could not load model {name_or_path!r}: {type(exc).__name__}") from exc
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


def set_attention(model: Any, mode: AttentionMode) -> None:
    """Puts the encoder into `mode`, whatever state the previous job left it in.

    `change_attention_model` without a context keeps the old one, so the context is always passed.

    Args:
        model: A loaded NeMo model.
        mode: The mode to switch to.
    """
    chunking = (
        config.LOCAL_SUBSAMPLING_CHUNKING_FACTOR if mode is LOCAL_ATTENTION else _default_chunking_factor
    )
    wanted = (mode.model, mode.context, chunking)
    if current_attention(model) == wanted:
        return
    model.change_attention_model(mode.model, list(mode.context))
    model.change_subsampling_conv_chunking_factor(chunking)
    log.info("attention set to %s %s, subsampling chunking %s", mode.model, list(mode.context), chunking)


def _seconds(value: Any) -> float:
    """Rounds a time in seconds to milliseconds as a plain float."""
    return round(float(value), 3)


def _plain_timestamps(raw: dict[str, list[dict[str, Any]]], kinds: frozenset[str]) -> dict[str, list]:
    """Turns NeMo's timestamp dicts into the output contract's plain items."""
    result: dict[str, list[dict[str, Any]]] = {}
    if "word" in kinds:
        result["word"] = [
            {"word": str(item["word"]), "start": _seconds(item["start"]), "end": _seconds(item["end"])}
            for item in raw.get("word", [])
        ]
    if "segment" in kinds:
        result["segment"] = [
            {"text": str(item["segment"]), "start": _seconds(item["start"]), "end": _seconds(item["end"])}
            for item in raw.get("segment", [])
        ]
    if "char" in kinds:
        result["char"] = [
            {"char": "".join(item["char"]), "start": _seconds(item["start"]), "end": _seconds(item["end"])}
            for item in raw.get("char", [])
        ]
    return result


def transcribe(audio: np.ndarray, timestamp_kinds: frozenset[str] = frozenset()) -> Transcript:
    """Transcribes one 16 kHz mono float32 array with the cached model.

    Args:
        audio: Samples at `config.SAMPLE_RATE`, mono, float32.
        timestamp_kinds: Which of "word", "segment", "char" to return; empty for text only.

    Returns:
        The transcript with the attention mode used and the requested timestamps.

    Raises:
        ModelLoadError: The model could not be loaded.
    """
    import torch

    model = get_model()
    mode = attention_mode_for(len(audio) / config.SAMPLE_RATE)
    with _inference_lock:
        set_attention(model, mode)
        # Pass timestamps explicitly: None would keep whatever the previous job asked for.
        with torch.inference_mode():
            hypotheses = model.transcribe(
                [audio], batch_size=1, timestamps=bool(timestamp_kinds), verbose=False
            )
    hypothesis = hypotheses[0]
    text = hypothesis.text if hasattr(hypothesis, "text") else str(hypothesis)
    timestamps = _plain_timestamps(hypothesis.timestamp, timestamp_kinds) if timestamp_kinds else {}
    return Transcript(text=text.strip(), attention=mode.name, timestamps=timestamps)
