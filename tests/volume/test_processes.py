"""Installer processes (`utils.volume.processes`): killed with their children at the timeout, and a
clear error when one cannot start."""

import os
import sys
from pathlib import Path

import pytest

from tests.support.volume_env import (
    INSTALLER,
    WRAPPER,
    builds,
    make_settings,
    write_requirements,
)
from utils import volume as volume_env
from utils.errors import BootstrapError


def test_an_installer_past_its_timeout_is_killed_with_its_children(volume: Path, wheelhouse: Path) -> None:
    marks = volume / "marks"
    marks.mkdir()
    stalled = volume_env.Installer(
        INSTALLER.kind,
        (sys.executable, str(WRAPPER), "--mark", str(marks), "--sleep", "300", "--", *INSTALLER.command),
    )
    settings = make_settings(
        volume, write_requirements(volume, wheelhouse), installer=stalled, install_timeout=3.0
    )

    with pytest.raises(BootstrapError, match="took over 3 s"):
        volume_env.ensure_built(settings)

    [mark] = marks.iterdir()
    with pytest.raises(ProcessLookupError):
        os.kill(int(mark.name), 0)
    assert builds(settings) == []


def test_an_installer_that_cannot_start_is_a_bootstrap_error(volume: Path, wheelhouse: Path) -> None:
    missing = volume_env.Installer("pip", (str(volume / "no-such-installer"),))
    settings = make_settings(volume, write_requirements(volume, wheelhouse), installer=missing)

    with pytest.raises(BootstrapError, match="install step could not start"):
        volume_env.ensure_built(settings)

    assert builds(settings) == []
