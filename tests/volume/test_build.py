"""Building a volume environment (`utils.volume.build`) with real installers from a local wheelhouse: forced
rebuilds, failed installs, CUDA verification, and container packages pinned rather than duplicated."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bootstrap_wheels import build_wheelhouse, unpack_wheel
from tests.support.volume_env import (
    INSTALLER,
    builds,
    make_settings,
    volume_log,
    write_requirements,
)
from utils import volume as volume_env
from utils.errors import BootstrapError
from utils.volume import settings as layout


def test_force_publishes_a_fresh_build_and_leaves_the_old_one(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    first = volume_env.ensure_built(settings)

    second = volume_env.ensure_built(settings, force=True)

    assert second.build_dir != first.build_dir
    assert volume_env.find_ready(settings) == second
    assert (first.site_packages / "torch" / "__init__.py").is_file()


def test_a_failing_install_raises_with_the_installer_output_in_the_log_and_a_retry_succeeds(
    volume: Path, wheelhouse: Path, isolated_process: None
) -> None:
    partial = volume / "wheels"
    partial.mkdir()
    for wheel in wheelhouse.iterdir():
        if not wheel.name.startswith("nemo_toolkit"):
            shutil.copy(wheel, partial)
    settings = make_settings(volume, write_requirements(volume, partial))
    messages: list[str] = []

    with pytest.raises(BootstrapError) as caught:
        volume_env.ensure_environment(messages.append, settings=settings)

    assert caught.value.error_type == "bootstrap_failed"
    message = str(caught.value)
    assert f"{INSTALLER.kind} exit code" in message
    assert "\n" not in message
    assert str(volume) not in message
    install_lines = [line for line in volume_log(settings).splitlines() if "[install]" in line]
    assert any("nemo" in line.lower() for line in install_lines), install_lines
    assert builds(settings) == []
    assert any(message.startswith("Installing torch and NeMo") for message in messages)

    for wheel in wheelhouse.glob("nemo_toolkit-*.whl"):
        shutil.copy(wheel, partial)
    site_packages = volume_env.ensure_environment(settings=settings)
    assert site_packages is not None
    assert str(site_packages) in sys.path


def test_verification_fails_when_cuda_is_required_and_torch_has_none(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse), require_cuda=True)

    with pytest.raises(BootstrapError, match="CUDA not available"):
        volume_env.ensure_built(settings)

    assert '"cuda_available": false' in volume_log(settings)
    assert builds(settings) == []
    assert volume_env.find_ready(settings) is None


def test_a_gpu_hidden_by_cuda_visible_devices_is_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert volume_env.gpu_present() is False


def test_container_packages_are_pinned_and_reused_not_duplicated(
    volume: Path, isolated_process: None
) -> None:
    wheels = volume / "wheels"
    wheels.mkdir()
    build_wheelhouse(wheels, nemo_requires=["numpy"])
    container = volume / "container-site"
    container.mkdir()
    unpack_wheel(wheels / "numpy-1.26.4-py3-none-any.whl", container)
    settings = make_settings(volume, write_requirements(volume, wheels), container_paths=(container,))

    env = volume_env.ensure_built(settings)

    assert "numpy==1.26.4" in (env.build_dir / layout.CONSTRAINTS_NAME).read_text(encoding="utf-8").split()
    own = volume_env.installed_distributions([env.site_packages])
    if INSTALLER.kind == "pip":
        assert "numpy" not in own  # pip sees the container's copy and reuses it
    else:
        assert own["numpy"] == "1.26.4"  # uv looks only inside the target: an identical copy
    imported = subprocess.run(
        [str(env.python), "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "1.26.4"
    # The worker resolves imports in the same order: the environment first, then the container.
    sys.path.append(str(container))
    site_packages = volume_env.activate(env, (container,))
    assert sys.path.index(str(site_packages)) == sys.path.index(str(container)) - 1

    # A volume requirement that needs another numpy than the container's fails instead of mixing.
    write_requirements(volume, wheels, "numpy>=2")
    with pytest.raises(BootstrapError, match="exit code"):
        volume_env.ensure_built(settings)
