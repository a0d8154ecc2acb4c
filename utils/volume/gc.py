"""Collecting what dead builders left on the volume.

Unfinished builds keep a heartbeat file fresh; one whose heartbeat is older than
`BOOTSTRAP_GC_AGE_SECONDS` is dead and removed by `--gc` and after each build. Complete builds are
never collected automatically: running workers may use them.
"""

import json
import os
import secrets
import shutil
import time
from pathlib import Path

from utils.volume.locking import volume_log
from utils.volume.settings import (
    BUILD_NAME_RE,
    COMPLETE_NAME,
    ENVS_DIR,
    HEARTBEAT_NAME,
    READY_NAME,
    READY_TEMP_PREFIX,
    TRASH_PREFIX,
    Settings,
    log,
)


def _age(entry: Path, now: float) -> float:
    """Seconds since a build last showed life (heartbeat, else the directory's own mtime)."""
    heartbeat = entry / HEARTBEAT_NAME
    try:
        return now - heartbeat.stat().st_mtime
    except FileNotFoundError:
        return now - entry.stat().st_mtime


def _referenced_build(spec_dir: Path) -> str | None:
    """Returns the build named by a spec's ready.json, whatever its validity."""
    try:
        record = json.loads((spec_dir / READY_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    return record.get("build") if isinstance(record, dict) else None


def collect(root: Path, max_age: float) -> list[Path]:
    """Removes dead unpublished builds, stale temp files and interrupted removals under `root`."""
    envs = root / ENVS_DIR
    if not envs.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    for spec_dir in sorted(envs.iterdir()):
        if not spec_dir.is_dir():
            continue
        referenced = _referenced_build(spec_dir)
        for entry in sorted(spec_dir.iterdir()):
            try:
                if entry.name.startswith(TRASH_PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name.startswith(READY_TEMP_PREFIX):
                    if now - entry.stat().st_mtime <= max_age:
                        continue
                    entry.unlink()
                elif (
                    BUILD_NAME_RE.match(entry.name)
                    and entry.name != referenced
                    and entry.is_dir()
                    and not (entry / COMPLETE_NAME).exists()
                    and _age(entry, now) > max_age
                ):
                    # Renaming first is atomic: of two collectors, one gets the build.
                    trash = spec_dir / f"{TRASH_PREFIX}{entry.name}-{secrets.token_hex(4)}"
                    os.rename(entry, trash)
                    log.info("removing dead build %s (no heartbeat for %.0f s)", entry, max_age)
                    shutil.rmtree(trash, ignore_errors=True)
                else:
                    continue
                removed.append(entry)
            except FileNotFoundError:
                continue  # another collector got there first
            except OSError as exc:
                log.warning("cannot remove %s: %s", entry, exc)
    return removed


def collect_garbage(settings: Settings | None = None) -> list[Path]:
    """Removes builds whose builder died (no heartbeat for `settings.gc_age`) and stale temp files.

    Published and complete builds are kept: running workers may use them.

    Args:
        settings: The settings (root, gc age); default `Settings.from_config()`.

    Returns:
        The removed paths.

    Raises:
        BootstrapError: The volume is not mounted.
    """
    settings = settings or Settings.from_config()
    if not (settings.root / ENVS_DIR).is_dir():
        return []
    with volume_log(settings.root):
        removed = collect(settings.root, settings.gc_age)
        log.info("collected %d leftovers", len(removed))
        return removed


# --- CLI -----------------------------------------------------------------------------------------
