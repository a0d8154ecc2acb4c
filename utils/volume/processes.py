"""Runs an installer or check in its own process group, logging its output and reporting progress.

A step's result comes back as one JSON line after `RESULT_PREFIX` on its output; everything else is
logged line by line, and the last `OUTPUT_TAIL_LINES` are repeated as one block when the step fails.
"""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import config
from utils.errors import BootstrapError
from utils.volume.settings import Reporter, log

RESULT_PREFIX = "BOOTSTRAP_RESULT "
# Lines of an installer's or check's output repeated as one block in the log when it fails.
OUTPUT_TAIL_LINES = 40


@dataclass
class StepRun:
    """The outcome of a streamed subprocess: exit code (None: timed out), output tail, result line."""

    returncode: int | None
    tail: deque[str]
    result: dict[str, Any] | None


def _pump(stream: IO[str], tail: deque[str], results: list[str], tag: str) -> None:
    """Logs each output line of a subprocess, keeping the last ones and any result line."""
    for line in stream:
        line = line.rstrip()
        if line.startswith(RESULT_PREFIX):
            results.append(line[len(RESULT_PREFIX) :])
            continue
        tail.append(line)
        log.info("[%s] %s", tag, line)


def run_streamed(
    command: Sequence[str],
    *,
    tag: str,
    timeout: float,
    report: Reporter,
    activity: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> StepRun:
    """Runs a command in its own process group, logging its output and reporting progress while it runs.

    Args:
        command: The command.
        tag: Prefix of its log lines.
        timeout: Seconds after which the whole process group is killed.
        report: Progress reporter.
        activity: What is running, for periodic progress messages.
        env: Its environment (default: this process's).
        cwd: Its working directory.

    Returns:
        Exit code (None when it timed out), the last output lines and the parsed result line, if any.

    Raises:
        BootstrapError: The command could not be started.
    """
    # Inline scripts (python -c) are constants of this module; the log names them instead.
    log.info("running %s", shlex.join("<script>" if "\n" in arg else arg for arg in command))
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    results: list[str] = []
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            cwd=cwd,
            start_new_session=True,  # pip --python and NeMo start children; a timeout kills them all
        )
    except OSError as exc:
        log.error("cannot start %s: %s", command[0], exc)
        raise BootstrapError(
            f"The volume environment could not be built: the {tag} step could not start"
        ) from exc
    assert process.stdout is not None
    reader = threading.Thread(target=_pump, args=(process.stdout, tail, results, tag), daemon=True)
    reader.start()
    started = time.monotonic()
    returncode: int | None = None
    try:
        while returncode is None:
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                break
            try:
                wait = min(config.BOOTSTRAP_REPORT_EVERY_SECONDS, timeout - elapsed)
                returncode = process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                report(f"{activity} ({time.monotonic() - started:.0f} s so far)")
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended between the poll and the kill
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join()
    result = None
    if results:
        try:
            result = json.loads(results[-1])
        except ValueError:
            log.error("[%s] unreadable result line: %s", tag, results[-1])
    return StepRun(returncode, tail, result)


def step_failed(run: StepRun, tag: str, message: str) -> BootstrapError:
    """Logs the tail of a failed step's output and returns the client-facing error."""
    log.error("[%s] failed (exit code %s); last output lines:\n%s", tag, run.returncode, "\n".join(run.tail))
    return BootstrapError(message)
