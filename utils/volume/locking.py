"""Shared state on the volume: JSON records, heartbeats, the advisory lock and the volume log.

The lock only saves duplicate work: network filesystems can make flock succeed for everyone, so the
publish protocol (`utils.volume.publish`), not the lock, keeps builds correct.
"""

import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import config
from utils.errors import BootstrapError
from utils.volume.settings import LOG_NAME, LOGS_DIR, Reporter, Settings, log

T = TypeVar("T")


def builder_info() -> dict[str, Any]:
    """Identifies this builder in lock, heartbeat and ready files."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": now_iso()}


def now_iso() -> str:
    """Returns the current UTC time in ISO 8601, seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: dict[str, Any], *, durable: bool = False) -> None:
    """Writes a JSON file; `durable` also flushes it to storage before returning."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")
        if durable:
            file.flush()
            os.fsync(file.fileno())


class Heartbeat:
    """Keeps a file's mtime fresh while a build runs, so collectors can tell live builds from dead ones."""

    def __init__(self, path: Path, interval: float) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Self:
        write_json(self._path, builder_info())
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                os.utime(self._path)
            except OSError as exc:
                log.warning("heartbeat %s failed: %s", self._path, exc)


def _read_holder(lock_path: Path) -> str:
    """Describes who holds a lock, from what the holder wrote into the lock file."""
    try:
        holder = json.loads(lock_path.read_text(encoding="utf-8"))
        return f"{holder['host']} pid {holder['pid']} since {holder['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another worker"


@contextmanager
def locked(
    lock_path: Path, settings: Settings, report: Reporter, what: str, done: Callable[[], bool]
) -> Iterator[None]:
    """Holds an exclusive flock on `lock_path` if it can be had in time.

    Waiting stops early when `done()` becomes true (another worker finished). After
    `settings.lock_timeout`, or where the filesystem has no locks, the body runs unlocked: the publish
    protocol, not the lock, keeps builds correct.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666) if settings.use_lock else None
    locked = False
    try:
        started = time.monotonic()
        next_report = started + config.BOOTSTRAP_REPORT_EVERY_SECONDS
        while fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            except OSError as exc:
                log.warning("cannot lock %s (%s); going on without the lock", lock_path, exc)
                break
            else:
                locked = True
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(builder_info()).encode(), 0)
                break
            if done():
                break
            waited = time.monotonic() - started
            if waited >= settings.lock_timeout:
                log.warning(
                    "waited %.0f s for %s held by %s; going on without the lock",
                    waited,
                    what,
                    _read_holder(lock_path),
                )
                break
            if time.monotonic() >= next_report:
                next_report += config.BOOTSTRAP_REPORT_EVERY_SECONDS
                log.info("waiting for %s held by %s (%.0f s)", what, _read_holder(lock_path), waited)
                report(f"Waiting for another worker to finish {what} ({waited:.0f} s)")
            time.sleep(settings.lock_poll)
        yield
    finally:
        if fd is not None:
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextmanager
def volume_log(root: Path) -> Iterator[None]:
    """Creates the bootstrap root and adds the volume log file to the log for the duration.

    Raises:
        BootstrapError: The root's parent (the volume mount) does not exist.
    """
    if not root.parent.is_dir():
        log.error("%s does not exist: is the network volume attached?", root.parent)
        raise BootstrapError("The network volume is not mounted, so the environment cannot be built")
    (root / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(root / LOGS_DIR / LOG_NAME, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {socket.gethostname()}[%(process)d] %(message)s")
    )
    log.addHandler(handler)
    # The volume log records every build in full, whatever the program's own logging lets through.
    level = log.level
    log.setLevel(min(log.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        log.setLevel(level)
        log.removeHandler(handler)
        handler.close()


def once_on_volume(
    settings: Settings,
    lock_path: Path,
    report: Reporter,
    what: str,
    find: Callable[[], T | None],
    make: Callable[[], T],
    failure: str,
) -> T:
    """Makes something once for every worker of the volume: whoever gets the lock makes it, others wait.

    Under the volume log and the lock (waited for until `find` sees the result, or the lock timeout),
    `find` is asked again and `make` runs only when it still finds nothing.

    Args:
        settings: The settings (root, lock timing).
        lock_path: The lock file; its directory is created.
        report: Progress reporter.
        what: What is being made, for wait messages ("building the environment").
        find: Returns the finished result, or None.
        make: Makes the result.
        failure: The client-facing message when the volume cannot be written.

    Returns:
        What `find` or `make` returned.

    Raises:
        BootstrapError: `make` failed, or the volume is not mounted or not writable.
    """
    try:
        with volume_log(settings.root):
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            with locked(lock_path, settings, report, what, lambda: find() is not None):
                if (found := find()) is not None:
                    log.info("%s was done by another worker", what)
                    return found
                return make()
    except OSError as exc:
        log.exception("%s", failure)
        raise BootstrapError(f"{failure}: {exc.strerror or exc}") from exc


def replace_json(path: Path, data: dict[str, Any]) -> None:
    """Writes a JSON file whole or not at all: a temp file beside it, then `os.replace`.

    Args:
        path: The file to write.
        data: Its content.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    write_json(temp, data)
    os.replace(temp, path)
