"""The build lock and the volume log (`utils.volume.locking`): a held lock is waited for with reports, then
given up; a missing volume is reported, not created."""

import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path

import pytest

import config
from tests.support.volume_env import (
    make_settings,
    spec_dir,
    volume_log,
    write_requirements,
)
from utils import volume as volume_env
from utils.errors import BootstrapError
from utils.volume import settings as layout


def test_a_held_lock_is_waited_for_with_reports_then_given_up(
    volume: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "BOOTSTRAP_REPORT_EVERY_SECONDS", 0.1)
    settings = make_settings(volume, write_requirements(volume, wheelhouse), lock_timeout=0.5)
    directory = spec_dir(settings)
    directory.mkdir(parents=True)
    holder = os.open(directory / layout.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    messages: list[str] = []
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        info = {"host": "stuck-worker", "pid": 4242, "started_at": "2025-01-01T00:00:00+00:00"}
        os.write(holder, json.dumps(info).encode())

        env = volume_env.ensure_built(settings, messages.append)
    finally:
        os.close(holder)

    assert volume_env.find_ready(settings) == env
    log = volume_log(settings)
    assert "waiting for building the environment held by stuck-worker pid 4242" in log
    assert "going on without the lock" in log
    assert any(message.startswith("Waiting for another worker") for message in messages)


def test_a_missing_volume_is_reported_not_created() -> None:
    missing = Path(tempfile.gettempdir()) / f"no-volume-{socket.gethostname()}-{os.getpid()}"
    assert not missing.exists()
    settings = make_settings(missing, config.REPO_ROOT / "requirements-volume.txt")

    with pytest.raises(BootstrapError, match="not mounted"):
        volume_env.ensure_built(settings)

    assert not missing.exists()
