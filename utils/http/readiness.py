"""Whether the HTTP server can transcribe yet, for RunPod's health contract on /ping.

The volume environment and the model are made ready on a background thread at start, so /ping answers
from the first second: starting (204), healthy (200) or failed (503, the reason in the log only).
A GPU failure later marks the worker failed, so that the load balancer stops sending it work.
"""

import logging
import threading
from collections.abc import Callable

from utils.errors import WorkerError
from utils.fitness import UnfitError

log = logging.getLogger(__name__)

STARTING, HEALTHY, FAILED = "starting", "healthy", "failed"


class Readiness:
    """The server's state, changed by the loading thread and by GPU failures."""

    def __init__(self) -> None:
        """Starts in `STARTING`."""
        self.state = STARTING
        self._lock = threading.Lock()

    def start(self, load: Callable[[], None]) -> threading.Thread:
        """Runs `load` on a background thread; the state follows its outcome.

        Args:
            load: Makes the environment and the model ready; raises on failure.

        Returns:
            The thread (started).
        """
        thread = threading.Thread(target=self._load, args=(load,), name="model-load", daemon=True)
        thread.start()
        return thread

    def _load(self, load: Callable[[], None]) -> None:
        try:
            load()
        except (WorkerError, UnfitError) as error:
            log.error("start-up failed: %s", error)
            self._set(FAILED)
        except Exception:
            log.exception("start-up failed with an unexpected error")
            self._set(FAILED)
        else:
            log.info("ready to transcribe")
            self._set(HEALTHY)

    def fail(self, reason: str) -> None:
        """Marks the worker failed for good (an unrecoverable GPU error).

        Args:
            reason: For the log.
        """
        log.error("the worker is no longer healthy: %s", reason)
        self._set(FAILED)

    def _set(self, state: str) -> None:
        with self._lock:
            if self.state != FAILED:
                self.state = state
