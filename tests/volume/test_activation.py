"""Finding or building the environment before the first model load (`utils.volume.activation`), with or
without a network volume."""

import importlib.util
from pathlib import Path

import pytest

from tests.support.volume_env import (
    make_settings,
    write_requirements,
)
from utils import volume as volume_env


def test_skipped_when_this_interpreter_already_imports_nemo(volume: Path) -> None:
    assert importlib.util.find_spec("nemo") is not None  # the development environment has NeMo
    settings = make_settings(volume, volume / "missing.txt", skip_if_nemo_importable=True)

    assert volume_env.ensure_environment(settings=settings) is None
    assert not settings.root.exists()


def test_without_a_volume_it_builds_on_the_containers_disk_and_warns(
    volume: Path, wheelhouse: Path, isolated_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse), on_volume=False)
    with caplog.at_level("WARNING", logger="parakeet.bootstrap"):
        site_packages = volume_env.ensure_environment(settings=settings)
    assert site_packages is not None
    assert settings.root in site_packages.parents
    assert volume_env.find_ready(settings) is not None
    [warning] = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert "no network volume is mounted" in warning
    assert "every cold start" in warning


def test_on_a_volume_it_builds_without_that_warning(
    volume: Path, wheelhouse: Path, isolated_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    with caplog.at_level("WARNING", logger="parakeet.bootstrap"):
        assert volume_env.ensure_environment(settings=settings) is not None
    assert "no network volume" not in caplog.text
