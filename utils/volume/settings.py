"""What a volume build depends on, the names of its files, and the records it hands around.

Layout under the bootstrap root (`bootstrap_root()`: `/runpod-volume/Parakeet` on a volume):

    envs/<spec-id>/ready.json          the published pointer: names the winning build, versions, checks
    envs/<spec-id>/.lock               flock file; saves duplicate work, correctness does not need it
    envs/<spec-id>/b-<time>-<host>-<pid>-<rand>/   one builder's venv, built in place (not relocatable)
    models/<org>--<name>.json          the model weights fetched into HF_HOME (default <root>/hf)
    logs/bootstrap.log                 every build, wait and collection, with the installer output
"""

import logging
import os
import re
import site
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import config

log = logging.getLogger("parakeet.bootstrap")

ENVS_DIR = "envs"
MODELS_DIR = "models"
LOGS_DIR = "logs"
LOG_NAME = "bootstrap.log"
READY_NAME = "ready.json"
LOCK_NAME = ".lock"
READY_TEMP_PREFIX = ".ready-"
TRASH_PREFIX = ".trash-"
BUILD_PREFIX = "b-"
BUILD_NAME_RE = re.compile(r"^b-[A-Za-z0-9_.-]+$")
HEARTBEAT_NAME = "bootstrap-building.json"
COMPLETE_NAME = "bootstrap-complete.json"
CONSTRAINTS_NAME = "bootstrap-constraints.txt"
CONTAINER_PTH_NAME = "_parakeet_container.pth"
RESULT_PREFIX = "BOOTSTRAP_RESULT "
# How often a waiting worker retries the lock and looks for a published environment.
LOCK_POLL_SECONDS = 1.0


def running_site_packages() -> tuple[Path, ...]:
    """Returns the running interpreter's site-packages directories (the container's packages).

    Returns:
        Existing directories, in import order.
    """
    paths = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    return tuple(Path(p) for p in dict.fromkeys(paths) if os.path.isdir(p))


@dataclass(frozen=True)
class Installer:
    """A package installer: `kind` decides the arguments, `command` is how to start it."""

    kind: str  # "uv" or "pip"
    command: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Everything a build depends on; `Settings.from_config()` is what the worker uses."""

    root: Path
    requirements: Path
    container_requirements: Path
    container_paths: tuple[Path, ...]
    model: str
    hf_home: Path
    # More models to fetch beside `model`: the other served models, and the diarizer when preloaded.
    prefetch: tuple[str, ...] = ()
    extra_packages: tuple[str, ...] = ()
    installer_choice: str = "auto"
    installer: Installer | None = None  # overrides installer_choice
    require_cuda: bool | None = None  # None: required when the machine has an NVIDIA GPU
    lock_timeout: float = field(default_factory=lambda: config.BOOTSTRAP_LOCK_TIMEOUT_SECONDS)
    lock_poll: float = LOCK_POLL_SECONDS
    use_lock: bool = True  # False only to test that correctness does not rest on the lock
    gc_age: float = field(default_factory=lambda: config.BOOTSTRAP_GC_AGE_SECONDS)
    heartbeat_interval: float = field(default_factory=lambda: config.BOOTSTRAP_HEARTBEAT_SECONDS)
    install_timeout: float = field(default_factory=lambda: config.BOOTSTRAP_INSTALL_TIMEOUT_SECONDS)
    verify_timeout: float = field(default_factory=lambda: config.BOOTSTRAP_VERIFY_TIMEOUT_SECONDS)
    model_timeout: float = field(default_factory=lambda: config.BOOTSTRAP_MODEL_TIMEOUT_SECONDS)
    skip_if_nemo_importable: bool = True
    # False when no volume is mounted and the environment lives on the container's disk.
    on_volume: bool = True

    @classmethod
    def from_config(cls) -> "Settings":
        """Builds the settings from `config` and the running interpreter.

        Returns:
            The settings of this worker.
        """
        root = bootstrap_root()
        return cls(
            root=root,
            requirements=config.BOOTSTRAP_REQUIREMENTS,
            container_requirements=config.CONTAINER_REQUIREMENTS,
            container_paths=running_site_packages(),
            model=(config.PARAKEET_MODELS or (config.PARAKEET_MODEL,))[0],
            prefetch=(
                *config.PARAKEET_MODELS[1:],
                *((config.DIARIZER_MODEL,) if config.PRELOAD_DIARIZER else ()),
            ),
            hf_home=config.HF_HOME or root / "hf",
            extra_packages=config.BOOTSTRAP_EXTRA_PACKAGES,
            installer_choice=config.BOOTSTRAP_INSTALLER,
            require_cuda=config.BOOTSTRAP_REQUIRE_CUDA,
            on_volume=config.BOOTSTRAP_ROOT is not None or volume_mounted(),
        )


def volume_mounted() -> bool:
    """Whether a network volume is mounted at `config.VOLUME_ROOT`."""
    return config.VOLUME_ROOT.is_dir()


def bootstrap_root() -> Path:
    """Where the environment is built: `BOOTSTRAP_ROOT` when set, else on the volume when one is mounted,
    else on the container's own disk (`CONTAINER_BOOTSTRAP_ROOT`), which every cold start builds anew.

    Returns:
        The bootstrap root.
    """
    if config.BOOTSTRAP_ROOT is not None:
        return config.BOOTSTRAP_ROOT
    return config.VOLUME_ROOT / "Parakeet" if volume_mounted() else config.CONTAINER_BOOTSTRAP_ROOT


@dataclass(frozen=True)
class Spec:
    """The identity of an environment: `id` is a hash of `inputs`."""

    id: str
    inputs: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True)
class Environment:
    """A published, verified build; `record` is its `ready.json`."""

    spec_id: str
    build_dir: Path
    record: dict[str, Any] = field(hash=False, compare=False)

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.build_dir / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        """The environment's site-packages directory."""
        return site_packages_of(self.build_dir)


def site_packages_of(build_dir: Path) -> Path:
    """Returns the site-packages directory of a POSIX venv made by this interpreter's version."""
    return build_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


class Reporter:
    """Sends a progress message to the log and to the caller's callback (whose failures are only logged)."""

    def __init__(self, callback: Callable[[str], None] | None) -> None:
        self._callback = callback

    def __call__(self, message: str) -> None:
        log.info("%s", message)
        if self._callback is None:
            return
        try:
            self._callback(message)
        except Exception:
            # A lost progress report must not fail the build.
            log.exception("the progress callback failed")


# --- Identity ------------------------------------------------------------------------------------
