"""Making a published environment importable in the running worker."""

import importlib.util
import os
import site
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from utils.volume.build import ensure_built
from utils.volume.model import ensure_model
from utils.volume.publish import find_ready
from utils.volume.settings import Environment, Settings, log


def activate(env: Environment, container_paths: Sequence[Path] = ()) -> Path:
    """Makes the environment's packages importable in this process.

    The site-packages directory (and its .pth files) goes before the container's site-packages, the
    order the environment's own interpreter has, so imports resolve as they did in the verification.

    Args:
        env: The published environment.
        container_paths: The container's site-packages directories.

    Returns:
        The activated site-packages directory.
    """
    before = list(sys.path)
    site.addsitedir(str(env.site_packages))
    added = [entry for entry in sys.path if entry not in before]
    container = {str(path) for path in container_paths}
    position = next((i for i, entry in enumerate(before) if entry in container), len(before))
    sys.path[:] = before[:position] + added + before[position:]
    return env.site_packages


_activation_lock = threading.Lock()
_activated: dict[Settings, Path] = {}


def ensure_environment(
    progress: Callable[[str], None] | None = None, *, settings: Settings | None = None
) -> Path | None:
    """Makes torch and NeMo importable: reuses or builds the volume environment and activates it.

    Called by the handler before it first imports NeMo. Skipped when this interpreter already has NeMo
    (a baked image, local development, CI). A ready environment costs a few milliseconds; a failure
    raises, and the next call tries again.

    Args:
        progress: Receives short human-readable progress messages (waiting, installing, verifying).
        settings: Overrides `Settings.from_config()` (tests).

    Returns:
        The activated site-packages directory, or None when skipped.

    Raises:
        BootstrapError: The environment or the model could not be built, verified or fetched.
    """
    settings = settings or Settings.from_config()
    with _activation_lock:
        if settings in _activated:
            return _activated[settings]
        if settings.skip_if_nemo_importable and importlib.util.find_spec("nemo") is not None:
            return None
        env = find_ready(settings)
        if env is None and not settings.on_volume:
            log.warning(
                "no network volume is mounted: building torch and NeMo on the container's disk (%s); every "
                "cold start of this endpoint pays for it, so attach a network volume to build once",
                settings.root,
            )
        env = env or ensure_built(settings, progress)
        ensure_model(settings, env, progress)
        # NeMo's from_pretrained reads the hub cache from HF_HOME: the volume's, where the model is.
        os.environ["HF_HOME"] = str(settings.hf_home)
        site_packages = activate(env, settings.container_paths)
        _activated[settings] = site_packages
        log.info("environment %s active (%s)", env.spec_id, env.build_dir.name)
        return site_packages


# --- Building ------------------------------------------------------------------------------------
