"""The NeMo Sortformer diarizer: loaded once per process, like the ASR model and through the same path.

It turns an item's samples into speaker activity: one probability per 80 ms frame for each of the
model's four speaker slots, slots in order of first appearance (Sortformer's arrival-time sorting).
Audio longer than `config.DIARIZER_STREAMING_ABOVE_SECONDS` (and any audio, for a model configured to
stream) runs in the model's streaming mode, chunk by chunk with a bounded speaker cache, so hours of
audio diarize in bounded memory. Calls run on the scheduler's thread (`utils.asr.scheduler.run_task`),
which owns the device.
"""

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

import config
from utils.asr import model as asr_model

log = logging.getLogger(__name__)

_load_lock = threading.Lock()
_loaded: "LoadedDiarizer | None" = None


@dataclass(frozen=True)
class LoadedDiarizer:
    """The cached diarizer and what its calls need to know."""

    model: Any
    name: str
    # Whether the model itself is configured to stream (a streaming-trained model always streams).
    streams: bool
    frame_seconds: float
    source: str


@dataclass(frozen=True)
class SpeakerActivity:
    """Speaker probabilities of one item: `probabilities[frame, slot]`, frames of `frame_seconds`."""

    probabilities: np.ndarray
    frame_seconds: float
    seconds: float = 0.0  # how long the diarizer ran on the device


def loaded() -> LoadedDiarizer:
    """Returns the process-wide diarizer named by `config.DIARIZER_MODEL`, loading it on first use.

    Returns:
        The cached diarizer.

    Raises:
        ModelLoadError: Loading failed; the next call tries again.
    """
    global _loaded
    with _load_lock:
        if _loaded is None or _loaded.name != config.DIARIZER_MODEL:
            from nemo.collections.asr.models import SortformerEncLabelModel

            model = asr_model.load_nemo(config.DIARIZER_MODEL, SortformerEncLabelModel, "diarizer")
            _loaded = LoadedDiarizer(
                model=model,
                name=config.DIARIZER_MODEL,
                streams=bool(model.cfg.get("streaming_mode", False)),
                frame_seconds=model.cfg.preprocessor.window_stride * model.encoder.subsampling_factor,
                source=asr_model.model_source(config.DIARIZER_MODEL)[0],
            )
            log.info("diarizer %s loaded on %s from %s", _loaded.name, model.device, _loaded.source)
        return _loaded


def info() -> dict[str, str]:
    """Describes the loaded diarizer for a result's `meta` block.

    Returns:
        `{"diarizer", "diarizer_source"}`.
    """
    current = loaded()
    # A .nemo by its id, as the ASR models are: a result never shows a server path.
    return {"diarizer": asr_model.model_id(current.name), "diarizer_source": current.source}


def speaker_activity(diarizer: LoadedDiarizer, samples: np.ndarray) -> SpeakerActivity:
    """Runs the diarizer on one item's mono samples.

    The samples are peak-normalized first (the model's offline path does so itself, its streaming
    path does not), so a quiet recording and a loud one look the same to it.

    Args:
        diarizer: From `loaded`.
        samples: 16 kHz mono float32.

    Returns:
        The speaker probabilities per frame.
    """
    import torch

    model = diarizer.model
    seconds = samples.size / config.SAMPLE_RATE
    # Set on every call: the model is shared, and no call may inherit another's mode.
    model.streaming_mode = diarizer.streams or seconds > config.DIARIZER_STREAMING_ABOVE_SECONDS
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    signal = torch.from_numpy(samples / peak if peak > 0 else samples.copy())[None].to(model.device)
    length = torch.tensor([samples.size], device=model.device)
    with torch.inference_mode():
        probabilities = model.forward(audio_signal=signal, audio_signal_length=length)[0]
    return SpeakerActivity(probabilities.float().cpu().numpy(), diarizer.frame_seconds)
