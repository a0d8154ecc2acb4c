"""`python bootstrap.py` (`utils.volume.cli`): a verified environment that --check and the fast path find."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import config
from tests.support.volume_env import (
    BASE_PYTHON,
    builds,
    refuse_processes,
    run_cli,
    write_requirements,
)
from utils import volume as volume_env
from utils.volume import settings as layout


def test_cli_builds_a_verified_environment_that_check_and_the_fast_path_find(
    volume: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch, isolated_process: None
) -> None:
    requirements = write_requirements(volume, wheelhouse)
    root = volume / "Parakeet"
    model = str(volume / "model.nemo")
    cli_env = {
        "BOOTSTRAP_ROOT": str(root),
        "BOOTSTRAP_REQUIREMENTS": str(requirements),
        "PARAKEET_MODEL": model,
        "BOOTSTRAP_REQUIRE_CUDA": "0",
    }

    built = run_cli(python=BASE_PYTHON, **cli_env)
    assert built.returncode == 0, built.stdout + built.stderr
    result = json.loads(built.stdout.splitlines()[-1])
    build_dir = Path(result["build_dir"])
    ready = json.loads((build_dir.parent / layout.READY_NAME).read_text(encoding="utf-8"))
    assert ready["build"] == build_dir.name
    assert ready["spec_id"] == build_dir.parent.name
    assert ready["versions"]["torch"] == "2.13.0"
    assert ready["versions"]["nemo_toolkit"] == "3.0.0"
    assert ready["verification"] == {
        "ok": True,
        "imports": ["torch", "nemo.collections.asr"],
        "cuda_required": False,
        "cuda_available": False,
    }
    assert "[install]" in (root / "logs" / "bootstrap.log").read_text(encoding="utf-8")

    checked = run_cli("--check", python=BASE_PYTHON, **cli_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    status = json.loads(checked.stdout.splitlines()[-1])
    assert status["ready"] is True
    assert status["build_dir"] == str(build_dir)

    empty = run_cli("--check", python=BASE_PYTHON, **{**cli_env, "BOOTSTRAP_ROOT": str(volume / "other")})
    assert empty.returncode == 1
    assert json.loads(empty.stdout.splitlines()[-1])["ready"] is False

    # The worker's path: same specification computed in another interpreter, no process started.
    listed = subprocess.run(
        [
            BASE_PYTHON,
            "-c",
            "import bootstrap; print('\\n'.join(map(str, bootstrap.running_site_packages())))",
        ],
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    settings = volume_env.Settings(
        root=root,
        requirements=requirements,
        container_requirements=config.CONTAINER_REQUIREMENTS,
        container_paths=tuple(Path(line) for line in listed.stdout.splitlines()),
        model=model,
        hf_home=root / "hf",
        skip_if_nemo_importable=False,
    )
    refuse_processes(monkeypatch)
    site_packages = volume_env.ensure_environment(settings=settings)
    assert site_packages == Path(result["site_packages"])
    assert str(site_packages) in sys.path
    assert os.environ["HF_HOME"] == str(root / "hf")
    assert volume_env.ensure_environment(settings=settings) == site_packages
    assert builds(settings) == [build_dir]
