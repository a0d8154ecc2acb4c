"""The NeMo Parakeet model: loaded once per process, the way users run it.

This package is the only place that imports torch and NeMo, and only when a model is first needed:
importing `nemo.collections.asr` takes seconds, and the rest of the worker must stay importable
without it.
"""

import functools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import config
from utils.asr import invariance
from utils.errors import InvalidInputError, ModelLoadError
from utils.volume import model as volume_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """The cached model and what the rest of the package needs to know about it."""

    model: Any
    name: str
    # The subsampling chunking factor the model was loaded with; full attention restores it.
    default_chunking_factor: int
    # One encoder frame in seconds (window stride times subsampling: 80 ms for Parakeet).
    frame_seconds: float
    # Where the weights came from: "file", "runpod_cache" or "hub" (HF_HOME on the volume, or a download).
    source: str = "file"


_load_lock = threading.Lock()
# The loaded models by name, least recently used first.
_models: "OrderedDict[str, LoadedModel]" = OrderedDict()


def device() -> str:
    """Returns "cuda" or "cpu" according to `config.DEVICE` and what torch sees.

    Returns:
        The device to load the model on.
    """
    if config.DEVICE != "auto":
        return config.DEVICE
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def compute_dtype(target: str) -> str:
    """The precision model calls run in, from `config.PRECISION` and the device.

    bf16 runs as autocast around each call; the weights and the preprocessor stay fp32.

    Args:
        target: "cuda" or "cpu".

    Returns:
        "bfloat16" or "float32".
    """
    return _compute_dtype(target, config.PRECISION)


@functools.cache
def _compute_dtype(target: str, precision: str) -> str:
    """`compute_dtype` once per device and setting (so that its warnings are logged once)."""
    if precision == "fp32":
        return "float32"
    if target != "cuda":
        if precision == "bf16":
            # torch's CPU LSTM kernels (the prediction network) refuse bf16 autocast.
            log.warning("PARAKEET_PRECISION is bf16, but bf16 does not run on the CPU; using fp32")
        return "float32"
    import torch

    if torch.cuda.is_bf16_supported():
        return "bfloat16"
    log.warning("this GPU does not support bf16; using fp32")
    return "float32"


def model_source(name_or_path: str) -> tuple[str, Path | None]:
    """Where a model will be loaded from.

    Args:
        name_or_path: A model setting's value (`PARAKEET_MODEL`, `DIARIZER_MODEL`).

    Returns:
        ("file", None) for a `.nemo` path; ("runpod_cache", file) when RunPod's model cache holds a
        hub model; else ("hub", None): `from_pretrained` (HF_HOME on the volume, then a download).
    """
    if name_or_path.endswith(".nemo") or Path(name_or_path).exists():
        return "file", None
    cached = volume_model.runpod_cached_file(name_or_path)
    return ("runpod_cache", cached) if cached is not None else ("hub", None)


def load_model(name_or_path: str) -> Any:
    """Loads a Parakeet model the way users run it: a hub name or a `.nemo` file.

    Args:
        name_or_path: A Hugging Face model name (e.g. `nvidia/parakeet-tdt-0.6b-v3`: from RunPod's
            model cache when it holds it, else `from_pretrained` into `HF_HOME`) or a path to a
            `.nemo` file (`restore_from`).

    Returns:
        The NeMo ASR model in eval mode on the configured device.

    Raises:
        ModelLoadError: The file is missing or the model cannot be restored or downloaded.
    """
    import nemo.collections.asr as nemo_asr

    return load_nemo(name_or_path, nemo_asr.models.ASRModel, "model")


def load_nemo(name_or_path: str, model_class: Any, kind: str) -> Any:
    """Loads a NeMo model from RunPod's model cache, a `.nemo` file or the hub, in eval mode.

    Args:
        name_or_path: A hub name or a `.nemo` path (see `model_source`).
        model_class: The NeMo class whose `restore_from`/`from_pretrained` to use.
        kind: What it is, for messages ("model", "diarizer").

    Returns:
        The model on the configured device.

    Raises:
        ModelLoadError: The file is missing or the model cannot be restored or downloaded; the message
            names the model by its id (a file by its name alone: the path is the operator's).
    """
    target = device()
    source, cached = model_source(name_or_path)
    shown = Path(name_or_path).stem if source == "file" else model_id(name_or_path)
    try:
        if cached is not None:
            model = model_class.restore_from(str(cached), map_location=target)
        elif source == "file":
            if not Path(name_or_path).is_file():
                # The path is the operator's; it goes to the log, not to the client.
                log.error("%s file %s does not exist", kind, name_or_path)
                raise ModelLoadError(f"the file of the {kind} {shown!r} does not exist on this worker")
            model = model_class.restore_from(name_or_path, map_location=target)
        else:
            model = model_class.from_pretrained(model_name=name_or_path, map_location=target)
    except ModelLoadError:
        raise
    except Exception as exc:
        log.exception("loading %s %s failed", kind, name_or_path)
        raise ModelLoadError(
            f"could not load the {kind} {shown!r} ({type(exc).__name__}); see the worker log"
        ) from exc
    model.eval()
    return model


def served_models() -> tuple[str, ...]:
    """The models this worker serves: `PARAKEET_MODELS`, else `PARAKEET_MODEL` alone; the first is the
    default.

    Returns:
        Hub names or `.nemo` paths, as configured.
    """
    return config.PARAKEET_MODELS or (config.PARAKEET_MODEL,)


def model_id(name: str) -> str:
    """The id clients use for a served model: a hub name as it is, a `.nemo` file by its stem.

    Args:
        name: A served model as configured.

    Returns:
        Its id.
    """
    return Path(name).stem if name.endswith(".nemo") else name


def resolve(requested: str) -> str:
    """The served model a job's `model` names (by its id or as configured).

    Args:
        requested: What the client sent.

    Returns:
        The model as configured.

    Raises:
        InvalidInputError: No served model has that name.
    """
    for name in served_models():
        if requested in (name, model_id(name)):
            return name
    shown = requested[: config.MAX_ECHOED_NAME_CHARS]
    ids = ", ".join(model_id(name) for name in served_models())
    raise InvalidInputError(f"model {shown!r} is not served here; served: {ids}")


def languages(name: str | None = None) -> tuple[str, ...]:
    """The languages a served model transcribes, known from its name (nothing is loaded).

    Args:
        name: One of `served_models()`; None: the default.

    Returns:
        ISO 639-1 codes: `OTHER_MODEL_LANGUAGES` for the models it names, else v3's `MODEL_LANGUAGES`.
    """
    return config.OTHER_MODEL_LANGUAGES.get(name or served_models()[0], config.MODEL_LANGUAGES)


def loaded(name: str | None = None) -> LoadedModel:
    """Returns a served model, loading it on first use; past `MAX_LOADED_MODELS` held, the least
    recently used one is unloaded.

    Args:
        name: One of `served_models()`; None: the default (the first).

    Returns:
        The cached model with its facts.

    Raises:
        ModelLoadError: Loading failed; the next call tries again.
    """
    name = name or served_models()[0]
    with _load_lock:
        if name not in _models:
            model = load_model(name)
            invariance.install(model)  # an item's words never depend on what shares its call
            _models[name] = LoadedModel(
                model=model,
                name=name,
                default_chunking_factor=model.encoder.pre_encode.subsampling_conv_chunking_factor,
                frame_seconds=model.cfg.preprocessor.window_stride * model.encoder.subsampling_factor,
                source=model_source(name)[0],
            )
            log.info("model %s loaded on %s from %s", name, model.device, _models[name].source)
        _models.move_to_end(name)
        while len(_models) > config.MAX_LOADED_MODELS:
            dropped, _ = _models.popitem(last=False)
            _free_device_memory()
            log.info("model %s unloaded (MAX_LOADED_MODELS=%d)", dropped, config.MAX_LOADED_MODELS)
        return _models[name]


def _free_device_memory() -> None:
    """Hands an unloaded model's GPU memory back (its last reference is gone once its call ends)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def get_model(name: str | None = None) -> Any:
    """Returns a served NeMo model (see `loaded`).

    Args:
        name: One of `served_models()`; None: the default.

    Returns:
        The NeMo model.

    Raises:
        ModelLoadError: Loading failed.
    """
    return loaded(name).model


def model_info(name: str | None = None) -> dict[str, str]:
    """Describes a served model for a result's `meta` block (loading it if needed).

    Args:
        name: One of `served_models()`; None: the default.

    Returns:
        `{"model", "model_source", "device", "precision"}`.
    """
    current = loaded(name)
    return {
        "model": model_id(current.name),  # a .nemo by its id: a result never shows a server path
        "model_source": current.source,
        "device": str(current.model.device),
        "precision": compute_dtype(current.model.device.type),
    }


def free_memory_bytes() -> int | None:
    """The memory a model call can still take: free GPU memory on CUDA, the host's available on the CPU.

    Returns:
        Bytes, or None when the host's available memory cannot be read (not Linux).
    """
    if device() == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
