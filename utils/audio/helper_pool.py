"""Long-lived decoder processes (`utils.audio.helper`) for small files: probe and decode in one pass,
without starting a process per item.

Isolation is kept: a helper is a process of its own, used by one item at a time. One that hangs past
the decode timeout, or whose job is cancelled, is killed and replaced; one that dies (a crash on a
hostile file) is replaced, and its item goes to the ffmpeg program, which answers as it always has.
Only helpers that cannot start (they die before saying they are ready, several times running) switch
the pool off; a file never does. An item that finds every helper busy waits at most
`DECODER_HELPER_WAIT_SECONDS`, then goes to the ffmpeg program, so a helper is never slower than it.
"""

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import config
from utils.errors import AudioTimeoutError
from utils.job import deadline
from utils.job.deadline import cap_to_job

log = logging.getLogger(__name__)

_HEADER_MAX_BYTES = 4096
# Helpers that die before saying they are ready this many times running cannot start (PyAV missing, say).
START_FAILURES_TO_GIVE_UP = 3
# The helper's program (tests put a stand-in that hangs or dies in its place, as they do for ffmpeg).
HELPER_COMMAND = (sys.executable, "-m", "utils.audio.helper")


class HelperGone(Exception):
    """The helper died or answered nonsense; its item goes to the ffmpeg program."""


@dataclass(frozen=True)
class Decoded:
    """A helper's answer: the stream's layout (None: unknown), and its samples unless it fell back."""

    stream: dict[str, Any] | None
    channels: int = 1
    pcm: bytes | None = None  # None: the ffmpeg program must decode the file


class _Helper:
    """One helper process and its pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            HELPER_COMMAND,
            cwd=config.REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._buffer = b""
        # Whether it said it is ready (it started: a death after that is a file's doing).
        self.ready = False

    def kill(self) -> None:
        """Stops the process (from any thread); its reader then sees the pipe end."""
        if self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        """Stops the process and closes its pipes (by the thread that used it)."""
        self.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def _read(self, until: float) -> bytes:
        """One read from the helper, waiting no later than `until` (monotonic)."""
        fd = self.process.stdout.fileno()
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                ready, _, _ = select.select([fd], [], [], left)
                chunk = os.read(fd, 1 << 20) if ready else None
            except OSError:
                raise HelperGone("the decoder helper's pipe broke") from None
            if chunk is not None:
                if not chunk:
                    raise HelperGone("the decoder helper exited")
                return chunk

    def _header(self, until: float) -> dict[str, Any]:
        """The next header line, read no later than `until` (monotonic)."""
        data = self._buffer
        while b"\n" not in data:
            if len(data) > _HEADER_MAX_BYTES:
                raise HelperGone("the decoder helper's answer has no header")
            data += self._read(until)
        line, _, self._buffer = data.partition(b"\n")
        try:
            header = json.loads(line)
        except ValueError:
            raise HelperGone("the decoder helper's header is not JSON") from None
        if not isinstance(header, dict):
            raise HelperGone("the decoder helper's header is not an object")
        return header

    def ask(self, path: Path, limit: float, timeout: float) -> Decoded:
        """Sends one request and reads its answer (after the helper's ready line, the first time).

        Raises:
            TimeoutError: No whole answer within `timeout`.
            HelperGone: The helper died or broke the protocol.
        """
        until = time.monotonic() + timeout
        try:
            self.process.stdin.write(json.dumps({"path": str(path), "limit": limit}).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            raise HelperGone("the decoder helper is not running") from None
        if not self.ready:
            if self._header(until).get("status") != "ready":
                raise HelperGone("the decoder helper did not say it is ready")
            self.ready = True
        header = self._header(until)
        data = self._buffer
        if header.get("status") != "ok":
            return Decoded(header.get("stream"))
        size = int(header["bytes"])
        chunks, have = [data], len(data)
        while have < size:
            chunk = self._read(until)
            chunks.append(chunk)
            have += len(chunk)
        pcm = b"".join(chunks)
        self._buffer = pcm[size:]
        return Decoded(header.get("stream"), int(header["channels"]), pcm[:size])


class DecoderPool:
    """Up to `DECODER_HELPERS` helpers, started on first need; each serves one item at a time."""

    def __init__(self) -> None:
        """Holds no helper yet."""
        self._idle: list[_Helper] = []
        self._started = 0
        self._lock = threading.Condition()
        # Helpers that died before they were ready, running; at START_FAILURES_TO_GIVE_UP the pool is
        # broken (PyAV missing, say) and ffmpeg takes every file.
        self.start_failures = 0
        self.broken = False

    def _take(self, until: float) -> _Helper | None:
        """An idle helper (started if there is room), waiting for one until `until`; None: none came."""
        with self._lock:
            while not self._idle and self._started >= config.DECODER_HELPERS:
                left = until - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Helper()
        except OSError:
            log.exception("could not start a decoder helper")
            self._forget()
            return None

    def _give_back(self, helper: _Helper) -> None:
        with self._lock:
            self._idle.append(helper)
            self._lock.notify()

    def _forget(self) -> None:
        with self._lock:
            self._started -= 1
            self._lock.notify()

    def decode(self, path: Path, limit: float) -> Decoded | None:
        """Decodes a small file in a helper.

        Args:
            path: The local file.
            limit: Seconds wanted (a second more tells that the audio goes on).

        Returns:
            The helper's answer, or None when no helper could take it (the ffmpeg program then does).

        Raises:
            AudioTimeoutError: The helper ran past `FFMPEG_TIMEOUT_SECONDS` (it is replaced).
            WorkerError: The job was cancelled or ran out of time meanwhile (it is replaced).
        """
        if config.DECODER_HELPERS < 1 or self.broken:
            return None
        timeout = cap_to_job(config.FFMPEG_TIMEOUT_SECONDS)
        helper = self._take(time.monotonic() + min(config.DECODER_HELPER_WAIT_SECONDS, timeout))
        if helper is None:
            return None
        job = deadline.current()
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            helper.kill()

        try:
            with job.on_cancel(kill) if job is not None else contextlib.nullcontext():
                answer = helper.ask(path, limit, timeout)
        except TimeoutError:
            helper.close()
            self._forget()
            if job is not None:
                job.check()  # the job's own deadline reports itself
            raise AudioTimeoutError(
                f"audio conversion took longer than {config.FFMPEG_TIMEOUT_SECONDS:g} s"
            ) from None
        except HelperGone as gone:
            helper.close()
            self._forget()
            if killed.is_set() and job is not None:
                job.check()
            if not helper.ready and not killed.is_set():
                self._failed_to_start(gone)
            else:
                log.warning("%s; it is replaced, and the item goes to the ffmpeg program", gone)
            return None
        self.start_failures = 0
        self._give_back(helper)
        return answer

    def _failed_to_start(self, gone: HelperGone) -> None:
        """Counts a helper that died before it was ready; enough of them running switch the pool off."""
        with self._lock:
            self.start_failures += 1
            if self.start_failures >= START_FAILURES_TO_GIVE_UP:
                self.broken = True
        if self.broken:
            log.error(
                "%s, %d times running: decoder helpers cannot start; the ffmpeg program takes every file now",
                gone,
                self.start_failures,
            )
        else:
            log.warning("%s before it was ready; the item goes to the ffmpeg program", gone)

    def close(self) -> None:
        """Stops the idle helpers (tests; at exit their stdin closes and they end by themselves)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._started -= len(idle)
        for helper in idle:
            helper.close()


pool = DecoderPool()
