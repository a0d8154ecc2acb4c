"""Start-up fitness checks: a worker that cannot do its job says so before it takes one.

RunPod runs registered checks before the worker loop starts (not in local or test mode); a failing check
marks the worker unhealthy and RunPod replaces it. The SDK adds its own GPU health check wherever
nvidia-smi exists; these checks cover what is ours: ffmpeg, the volume, the environment, and a GPU
that the configuration asks for.
"""

import importlib.util
import subprocess
import tempfile

import config
from utils import volume
from utils.errors import BootstrapError


class UnfitError(RuntimeError):
    """The worker cannot serve jobs; the message says why."""


def check_ffmpeg() -> str:
    """ffmpeg runs.

    Returns:
        What was found, for the start-up log.

    Raises:
        UnfitError: The binary is missing or fails to start.
    """
    try:
        found = subprocess.run(
            [config.FFMPEG_BINARY, "-version"], capture_output=True, check=True, timeout=30, text=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise UnfitError(f"ffmpeg ({config.FFMPEG_BINARY}) does not run: {type(error).__name__}") from error
    return found.stdout.partition("\n")[0]


def check_volume_writable() -> str:
    """When a network volume is mounted, this worker can write to it (the environment and models live there).

    Returns:
        What was found, for the start-up log.

    Raises:
        UnfitError: The volume is mounted but not writable.
    """
    if not config.VOLUME_ROOT.is_dir():
        return "no volume mounted"
    try:
        with tempfile.TemporaryFile(dir=config.VOLUME_ROOT, prefix=".fitness-"):
            pass
    except OSError as error:
        raise UnfitError(f"the volume {config.VOLUME_ROOT} is not writable: {error.strerror}") from error
    return "volume writable"


def check_environment() -> str:
    """torch and NeMo are importable here, or the volume environment is ready, or it can be built.

    Returns:
        What was found, for the start-up log.

    Raises:
        UnfitError: None of these holds (no installer, bad specification). Without a volume the
            environment is built on the container's disk, at every cold start.
    """
    if importlib.util.find_spec("nemo") is not None:
        return "NeMo importable"
    settings = volume.Settings.from_config()
    status = volume.check(settings)
    if status["ready"]:
        return "volume environment ready"
    if "error" in status:
        raise UnfitError(f"the volume environment cannot be built: {status['error']}")
    if not settings.root.parent.is_dir():
        raise UnfitError(f"the environment cannot be built: {settings.root.parent} does not exist")
    try:
        installer = volume.find_installer(config.BOOTSTRAP_INSTALLER)
    except BootstrapError as error:
        raise UnfitError(str(error)) from error
    if not settings.on_volume:
        return f"environment buildable with {installer.kind} on the container's disk, at every cold start"
    return f"volume environment buildable with {installer.kind}"


def check_gpu_expected() -> str:
    """A GPU is visible when the configuration asks for CUDA.

    Returns:
        What was found, for the start-up log.

    Raises:
        UnfitError: `PARAKEET_DEVICE=cuda` but this machine shows no NVIDIA GPU.
    """
    if config.DEVICE == "cuda" and not volume.gpu_present():
        raise UnfitError("PARAKEET_DEVICE is cuda but no NVIDIA GPU is visible")
    return "GPU visible" if volume.gpu_present() else "no GPU required"


CHECKS = (check_ffmpeg, check_volume_writable, check_environment, check_gpu_expected)


def register() -> None:
    """Registers every check with the RunPod SDK (run by the worker loop at start-up)."""
    import runpod  # here: the SDK takes a second to import, and the HTTP server runs the checks itself

    for check in CHECKS:
        runpod.serverless.register_fitness_check(check)
