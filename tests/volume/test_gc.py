"""Leftovers of dead builders (`utils.volume.gc`): ignored by the next build and removed by gc."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from tests.support.bootstrap_child import settings_to_json
from tests.support.volume_env import (
    CHILD,
    INSTALLER,
    PROCESS_TIMEOUT_SECONDS,
    WRAPPER,
    builds,
    make_settings,
    run_cli,
    write_requirements,
)
from utils import volume as volume_env


def test_a_killed_builder_is_ignored_by_the_next_build_and_removed_by_gc(
    volume: Path, wheelhouse: Path
) -> None:
    marks = volume / "marks"
    marks.mkdir()
    stalled = volume_env.Installer(
        INSTALLER.kind,
        (sys.executable, str(WRAPPER), "--mark", str(marks), "--sleep", "300", "--", *INSTALLER.command),
    )
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    builder = subprocess.Popen(
        [sys.executable, str(CHILD), settings_to_json(replace(settings, installer=stalled))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
        while not list(marks.iterdir()):
            assert time.monotonic() < deadline, "the installer never started"
            assert builder.poll() is None, "the builder ended before installing"
            time.sleep(0.05)
    finally:
        # The worker dies mid-install, and its installer with it (as when a container is stopped).
        builder.kill()
        builder.wait()
        for mark in marks.iterdir():
            os.kill(int(mark.name), signal.SIGKILL)
    [orphan] = builds(settings)
    assert volume_env.find_ready(settings) is None

    env = volume_env.ensure_built(settings)

    assert env.build_dir != orphan
    assert orphan.is_dir()  # its heartbeat is younger than gc_age: it could still be alive
    collected = run_cli("--gc", BOOTSTRAP_ROOT=str(settings.root), BOOTSTRAP_GC_AGE_SECONDS="0")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert json.loads(collected.stdout.splitlines()[-1])["removed"] == [str(orphan)]
    assert builds(settings) == [env.build_dir]
    assert volume_env.find_ready(settings) == env
