"""The GPU check script runs anywhere: without a CUDA device it says so and exits cleanly (CI), and its
steps name scripts that exist and accept their options."""

import json
import subprocess
import sys

import pytest

import config

SCRIPT = config.REPO_ROOT / "bench" / "gpu_checks.py"


def test_without_a_gpu_it_skips_cleanly() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"skipped": "no CUDA device: the GPU checks need one"}


@pytest.mark.parametrize("step", ["rtfx", "worker_loop", "job_cpu", "live"])
def test_every_step_names_a_script_that_takes_its_options(step: str) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    from gpu_checks import STEPS

    command = next(command for name, command, _ in STEPS if name == step)
    assert command[0].is_file()
    # argparse checks the options and stops at --help before any work is done.
    done = subprocess.run(
        [sys.executable, *map(str, command), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
