"""Per-job temporary directories, the process's own, and removing those dead workers left behind.

A job directory is named `<JOB_DIR_PREFIX><host>-<pid>-<random>`: a process killed mid-job (SIGKILL,
out of memory) cannot remove its own, so a starting worker removes those of this host whose process is
gone. A running process's directories are never touched, nor another host's (the temp root may be
shared storage).

Libraries write temporary files too (torch's compile cache, NeMo's transcription manifests). They
serve the model, which all jobs share, so they go to one process directory of the same name form,
set as the process's temp dir at start, removed at exit, and swept like a job's when the process dies.
"""

import atexit
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


def use_process_directory() -> Path:
    """Creates this process's temporary directory and makes it the temp dir of everything in it.

    Call it at start, before torch or NeMo is imported (torch reads the temp dir once).

    Returns:
        The directory, removed when the process exits.
    """
    path = Path(
        tempfile.mkdtemp(
            prefix=f"{config.JOB_DIR_PREFIX}{_host()}-{os.getpid()}-process-", dir=config.TEMP_ROOT
        )
    )
    os.environ["TMPDIR"] = str(path)  # child processes and libraries that read the environment
    tempfile.tempdir = str(path)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


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
