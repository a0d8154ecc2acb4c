"""Per-job temporary directories, and removing those that dead worker processes left behind.

A job directory is named `<JOB_DIR_PREFIX><host>-<pid>-<random>`: a process killed mid-job (SIGKILL,
out of memory) cannot remove its own, so a starting worker removes those of this host whose process is
gone. A running process's directories are never touched, nor another host's (the temp root may be
shared storage).
"""

import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import config

log = logging.getLogger(__name__)


def _host() -> str:
    """This host's name, reduced to characters that are safe in a file name."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


def job_directory() -> tempfile.TemporaryDirectory:
    """A new job directory under `config.TEMP_ROOT`, removed when its `with` block ends.

    Returns:
        The directory's context manager (its value is the path).
    """
    prefix = f"{config.JOB_DIR_PREFIX}{_host()}-{os.getpid()}-"
    return tempfile.TemporaryDirectory(prefix=prefix, dir=config.TEMP_ROOT)


def _alive(pid: int) -> bool:
    """Whether a process of this pid exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's
    return True


def remove_stale() -> list[Path]:
    """Removes the job directories of this host's dead worker processes.

    Returns:
        The removed directories.
    """
    pattern = re.compile(re.escape(f"{config.JOB_DIR_PREFIX}{_host()}-") + r"(\d+)-")
    removed = []
    try:
        entries = list(config.TEMP_ROOT.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or not entry.is_dir() or _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    if removed:
        log.info("removed %d job directories left by dead worker processes", len(removed))
    return removed
