"""Finding the environment before the first model load (`utils.volume.activation`)."""

import importlib.util
from pathlib import Path

from tests.support.volume_env import (
    make_settings,
)
from utils import volume as volume_env


def test_skipped_when_this_interpreter_already_imports_nemo(volume: Path) -> None:
    assert importlib.util.find_spec("nemo") is not None  # the development environment has NeMo
    settings = make_settings(volume, volume / "missing.txt", skip_if_nemo_importable=True)

    assert volume_env.ensure_environment(settings=settings) is None
    assert not settings.root.exists()
