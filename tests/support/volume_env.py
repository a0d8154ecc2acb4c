"""Helpers for the volume-environment tests: stand-in requirements, settings for a scratch volume, and
real builder and CLI processes.

Environments are built from a local wheelhouse of stand-in wheels (`bootstrap_wheels.py`) with
`--no-index`, so no package index is needed; races and killed builders are real processes.
"""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import config
from tests.support.bootstrap_child import settings_to_json
from utils import volume as volume_env
from utils.volume import settings as layout

CHILD = config.REPO_ROOT / "tests" / "support" / "bootstrap_child.py"
WRAPPER = config.REPO_ROOT / "tests" / "support" / "bootstrap_installer.py"
# The interpreter this venv was made from: it has pip and numpy but no torch or NeMo, like the
# container. The CLI tests run under it.
BASE_PYTHON = os.path.realpath(sys._base_executable)
INSTALLER = volume_env.find_installer("auto")
PROCESS_TIMEOUT_SECONDS = 120


def write_requirements(volume: Path, wheelhouse: Path, *extra: str) -> Path:
    """Writes volume requirements that install the stand-ins from `wheelhouse` only."""
    path = volume / "requirements-volume.txt"
    lines = ["--no-index", f"--find-links {wheelhouse}", "torch==2.13.0", "nemo_toolkit==3.0.0", *extra]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_settings(volume: Path, requirements: Path, **changes: object) -> volume_env.Settings:
    """Settings for a volume in `volume`: no container packages, a .nemo model, no CUDA required."""
    settings = volume_env.Settings(
        root=volume / "Parakeet",
        requirements=requirements,
        container_requirements=volume / "requirements.txt",
        container_paths=(),
        model=str(volume / "model.nemo"),
        hf_home=volume / "Parakeet" / "hf",
        installer=INSTALLER,
        require_cuda=False,
        lock_poll=0.05,
        skip_if_nemo_importable=False,
    )
    return replace(settings, **changes)


def spec_dir(settings: volume_env.Settings) -> Path:
    return settings.root / layout.ENVS_DIR / volume_env.compute_spec(settings).id


def builds(settings: volume_env.Settings) -> list[Path]:
    """The build directories (published or not) of the settings' current specification."""
    directory = spec_dir(settings)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if layout.BUILD_NAME_RE.match(p.name))


def volume_log(settings: volume_env.Settings) -> str:
    return (settings.root / layout.LOGS_DIR / layout.LOG_NAME).read_text(encoding="utf-8")


def refuse_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes starting any process fail, to prove a path runs no installer or check."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def run_children(settings: volume_env.Settings, count: int) -> list[dict[str, str]]:
    """Runs `count` builder processes at once; returns each one's JSON result line."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(CHILD), settings_to_json(settings)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        outputs = [process.communicate(timeout=PROCESS_TIMEOUT_SECONDS)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    return [json.loads(output.splitlines()[-1]) for output in outputs]


def run_cli(*args: str, python: str = sys.executable, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "bootstrap.py", *args],
        check=False,
        cwd=config.REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_SECONDS,
    )
