"""The identity of a volume environment: a hash of everything that changes what gets installed.

The spec id hashes the python version and base interpreter, platform and libc, the bytes of the volume
requirements (index URLs included), the extra packages, the container's requirements file and the
distributions installed in the container. A new specification gets a new directory; a published build
is never modified, so running workers keep theirs.
"""

import hashlib
import json
import logging
import os
import platform
import re
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.errors import BootstrapError
from utils.volume.settings import Settings

SCHEMA_VERSION = 1

log = logging.getLogger("parakeet.bootstrap")


@dataclass(frozen=True)
class Spec:
    """The identity of an environment: `id` is a hash of `inputs`."""

    id: str
    inputs: dict[str, Any] = field(hash=False, compare=False)


def _normalize_name(name: str) -> str:
    """Returns a distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(paths: Sequence[Path]) -> dict[str, str]:
    """Lists the distributions installed in `paths` from their metadata directory names.

    Reading names only (no metadata files) keeps the ready check within milliseconds.

    Args:
        paths: site-packages directories; the first one holding a name wins, as on sys.path.

    Returns:
        Normalized name to version.
    """
    found: dict[str, str] = {}
    pattern = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d[\d.]*)?\.(?:dist|egg)-info$")
    for path in paths:
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        for entry in sorted(entries):
            match = pattern.match(entry)
            if match:
                found.setdefault(_normalize_name(match["name"]), match["version"])
    return found


def compute_spec(settings: Settings) -> Spec:
    """Computes the specification id of the environment these settings describe.

    Args:
        settings: The build settings.

    Returns:
        The spec (id and the inputs hashed into it).

    Raises:
        BootstrapError: The volume requirements file cannot be read.
    """
    try:
        requirements = settings.requirements.read_bytes()
    except OSError as exc:
        log.error("cannot read the volume requirements %s: %s", settings.requirements, exc)
        raise BootstrapError("The volume environment's requirements file is missing or unreadable") from exc
    try:
        container_requirements: str | None = hashlib.sha256(
            settings.container_requirements.read_bytes()
        ).hexdigest()
    except FileNotFoundError:
        container_requirements = None
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown"
    except (ValueError, OSError):
        libc = "unknown"
    inputs = {
        "schema": SCHEMA_VERSION,
        "python": {
            "implementation": sys.implementation.name,
            "version": platform.python_version(),
            "cache_tag": sys.implementation.cache_tag,
            # The venv's bin/python links to this binary.
            "executable": os.path.realpath(sys._base_executable),
        },
        "platform": {"platform": sysconfig.get_platform(), "libc": libc},
        "requirements_sha256": hashlib.sha256(requirements).hexdigest(),
        "extra_packages": list(settings.extra_packages),
        "container_requirements_sha256": container_requirements,
        "container_packages": sorted(
            f"{name}=={version}"
            for name, version in installed_distributions(settings.container_paths).items()
        ),
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return Spec(id=digest[:16], inputs=inputs)


# --- Finding and activating -----------------------------------------------------------------------
