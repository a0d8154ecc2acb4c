"""Where the environment is built (`utils.volume.settings`): on the volume when one is mounted, on the
container's own disk when none is, or wherever BOOTSTRAP_ROOT says."""

from pathlib import Path

import pytest

import config
from utils.volume.settings import Settings


@pytest.fixture
def unset_roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", None)
    monkeypatch.setattr(config, "HF_HOME", None)
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path / "volume")
    monkeypatch.setattr(config, "CONTAINER_BOOTSTRAP_ROOT", tmp_path / "container")


@pytest.mark.usefixtures("unset_roots")
def test_without_a_volume_the_environment_lives_on_the_containers_disk(tmp_path: Path) -> None:
    settings = Settings.from_config()
    assert (settings.root, settings.hf_home, settings.on_volume) == (
        tmp_path / "container",
        tmp_path / "container" / "hf",
        False,
    )


@pytest.mark.usefixtures("unset_roots")
def test_a_mounted_volume_holds_the_environment_and_the_models(tmp_path: Path) -> None:
    (tmp_path / "volume").mkdir()
    settings = Settings.from_config()
    assert (settings.root, settings.hf_home, settings.on_volume) == (
        tmp_path / "volume" / "Parakeet",
        tmp_path / "volume" / "Parakeet" / "hf",
        True,
    )


@pytest.mark.usefixtures("unset_roots")
def test_bootstrap_root_and_hf_home_are_taken_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", tmp_path / "chosen")
    monkeypatch.setattr(config, "HF_HOME", tmp_path / "weights")
    settings = Settings.from_config()
    assert (settings.root, settings.hf_home, settings.on_volume) == (
        tmp_path / "chosen",
        tmp_path / "weights",
        True,
    )
