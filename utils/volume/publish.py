"""Publishing a verified build, and finding the published one.

Each builder builds into a directory of its own, verifies it, then hard-links a fully written temp
file to `ready.json` (`os.link` fails when the name exists, on NFS too). The first link wins; a loser
deletes its own never-published build and uses the winner's. A `ready.json` that does not parse or
names a missing build counts as absent and is replaced with `os.replace` (also the fallback where hard
links are unsupported, and `--force`).
"""

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from utils.volume.locking import write_json
from utils.volume.settings import (
    BUILD_NAME_RE,
    COMPLETE_NAME,
    ENVS_DIR,
    READY_NAME,
    READY_TEMP_PREFIX,
    Environment,
    Settings,
    log,
)
from utils.volume.spec import SCHEMA_VERSION, Spec, compute_spec


def spec_dir(root: Path, spec_id: str) -> Path:
    """Returns the directory that holds every build of one specification."""
    return root / ENVS_DIR / spec_id


def read_ready(spec_dir: Path, spec_id: str) -> Environment | None:
    """Reads a spec's `ready.json`; anything unreadable, inconsistent or pointing nowhere is absent."""
    path = spec_dir / READY_NAME
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    build = record.get("build") if isinstance(record, dict) else None
    if (
        not isinstance(build, str)
        or not BUILD_NAME_RE.match(build)
        or record.get("schema") != SCHEMA_VERSION
        or record.get("spec_id") != spec_id
    ):
        log.warning("ignoring %s: not a ready record of spec %s", path, spec_id)
        return None
    env = Environment(spec_id=spec_id, build_dir=spec_dir / build, record=record)
    if not env.site_packages.is_dir() or not env.python.exists():
        log.warning("ignoring %s: build %s is missing", path, build)
        return None
    return env


def find_ready(settings: Settings, spec: Spec | None = None) -> Environment | None:
    """Returns the published environment for these settings, or None (the fast check: milliseconds).

    Args:
        settings: The build settings.
        spec: The spec when already computed.

    Returns:
        The published environment, or None when there is none (or its record is invalid).

    Raises:
        BootstrapError: The volume requirements file cannot be read.
    """
    spec = spec or compute_spec(settings)
    return read_ready(spec_dir(settings.root, spec.id), spec.id)


def link_first(temp: Path, ready: Path) -> bool | None:
    """Publishes `temp` as `ready` only if `ready` does not exist.

    Returns:
        True when linked, False when `ready` already exists, None when the filesystem has no hard links.
    """
    try:
        os.link(temp, ready)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}:
            log.warning("hard links unsupported here (%s); publishing with os.replace", exc)
            return None
        raise
    return True


def discard(build_dir: Path) -> None:
    """Deletes a build that was never published.

    The complete marker goes first, so that a partial delete is collectable.
    """
    (build_dir / COMPLETE_NAME).unlink(missing_ok=True)
    shutil.rmtree(build_dir, ignore_errors=True)


def publish(
    spec_dir: Path, spec: Spec, build_dir: Path, record: dict[str, Any], *, force: bool
) -> Environment:
    """Publishes a verified build: the first builder to link `ready.json` wins."""
    ready = spec_dir / READY_NAME
    temp = spec_dir / f"{READY_TEMP_PREFIX}{build_dir.name}.tmp"
    write_json(temp, record, durable=True)
    try:
        if not force:
            linked = link_first(temp, ready)
            if linked:
                log.info("published environment %s: %s", spec.id, build_dir.name)
                return Environment(spec.id, build_dir, record)
            winner = read_ready(spec_dir, spec.id)
            if winner is not None:
                log.info("%s was published first; discarding %s", winner.build_dir.name, build_dir.name)
                discard(build_dir)
                return winner
            if linked is False:
                log.warning("replacing the invalid %s", ready)
        os.replace(temp, ready)
        log.info("published environment %s: %s", spec.id, build_dir.name)
        return Environment(spec.id, build_dir, record)
    finally:
        temp.unlink(missing_ok=True)


# --- Model ---------------------------------------------------------------------------------------
