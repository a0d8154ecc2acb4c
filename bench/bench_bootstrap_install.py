"""How long the first worker waits for the volume environment: install time with uv and pip, size, check time.

    .venv/bin/python bench/bench_bootstrap_install.py [--workdir DIR] [--installers uv,pip]

What it does, in a temporary directory (removed at the end):
1. A stand-in container: a venv of the base interpreter with uv and requirements.txt installed from
   PyPI, resolved together with the volume requirements (it prints where that differs from
   requirements.txt alone: pins the image needs, since bootstrap pins every container package).
2. For each installer, with an empty package cache: `python bootstrap.py` under that interpreter
   builds the volume environment into an empty volume directory (venv, install, verification), as a
   first worker or a pre-warming pod does. Timings come from the build's ready.json.
3. With the uv environment in place: the worker's ready check, `bootstrap.ensure_environment()` in a
   fresh process (the cost the handler pays on its first job), several times.

Only PyPI is reachable from the machines this runs on, so the requirements are requirements-volume.txt
minus the PyTorch index: PyPI's default Linux torch 2.13.0 is itself a CUDA build (CUDA 13.0, the
nvidia-*-cu13 and cuda-toolkit wheels), a download of the same size class as the cu128 build, and
cuda-python moves to 13.0.3 to match its cuda-bindings 13. The local CPU wheelhouse (/opt/wheels,
pip's find-links here) cannot leak in: bootstrap gives the installer no ambient pip configuration,
and the run asserts that torch is not a +cpu build and that the nvidia packages were installed.
Needs about 25 GB of free disk and a few GB of downloads per installer.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_PYTHON = os.path.realpath(sys._base_executable)
# PyPI's torch 2.13.0 requires cuda-bindings>=13.0.3,<14; cuda-python 13.0.3 pins cuda-bindings~=13.0.3.
PYPI_CUDA_PYTHON = "cuda-python==13.0.3"
CHECK_RUNS = 7
CHECK_SCRIPT = (
    "import time\n"
    "started = time.perf_counter()\n"
    "import bootstrap\n"
    "imported = time.perf_counter()\n"
    "site_packages = bootstrap.ensure_environment()\n"
    "done = time.perf_counter()\n"
    "assert site_packages is not None\n"
    "print((imported - started) * 1000, (done - imported) * 1000)\n"
)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without pip settings (find-links /opt/wheels, local indexes)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return {**env, **extra}


def pypi_requirements(text: str) -> str:
    """Turns requirements-volume.txt into its PyPI-only equivalent (see the module docstring).

    Raises:
        ValueError: requirements-volume.txt no longer has the lines this expects.
    """
    lines = []
    changed = {"index": False, "torch": False, "cuda-python": False}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("--extra-index-url", "--index-url")):
            changed["index"] = True
            continue
        if re.match(r"^torch==[^\s#]+\+cu\d+", stripped):
            line = re.sub(r"\+cu\d+", "", stripped)
            changed["torch"] = True
        elif stripped.startswith("cuda-python=="):
            line = PYPI_CUDA_PYTHON
            changed["cuda-python"] = True
        lines.append(line)
    if not all(changed.values()):
        raise ValueError(f"requirements-volume.txt changed shape; adapt this benchmark: {changed}")
    return "\n".join(lines) + "\n"


def disk_usage(path: Path) -> tuple[int, int]:
    """Returns bytes on disk (hard links counted once) and the number of files under `path`."""
    seen: set[int] = set()
    total = files = 0
    for directory, _, names in os.walk(path):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            files += 1
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_blocks * 512
    return total, files


def compiled_pins(python: Path, *requirements: Path) -> dict[str, str]:
    """Resolves requirement files together for `python` with uv; returns name to version."""
    done = subprocess.run(
        [str(python), "-m", "uv", "pip", "compile", "-q", "--no-header", "--python", str(python)]
        + [str(path) for path in requirements],
        check=True,
        capture_output=True,
        text=True,
        env=clean_environment(),
    )
    pins = {}
    for line in done.stdout.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def make_container(workdir: Path, volume_requirements: Path) -> Path:
    """Creates the stand-in container interpreter; returns its python.

    Its packages are requirements.txt resolved together with the volume requirements: bootstrap pins
    every container package, so the container must hold versions the volume environment accepts.
    Where that differs from resolving requirements.txt alone, requirements.txt needs those pins.
    """
    container = workdir / "container"
    subprocess.run([BASE_PYTHON, "-m", "venv", str(container)], check=True)
    python = container / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "uv"], check=True, env=clean_environment())
    alone = compiled_pins(python, REPO_ROOT / "requirements.txt")
    joint = compiled_pins(python, REPO_ROOT / "requirements.txt", volume_requirements)
    needed = {name: joint[name] for name in alone if joint.get(name) != alone[name]}
    print(
        "requirements.txt resolved alone differs from the joint resolution with the volume requirements: "
        + (", ".join(f"{name} {alone[name]} -> {version}" for name, version in needed.items()) or "none"),
        flush=True,
    )
    constraints = workdir / "container-constraints.txt"
    constraints.write_text("".join(f"{name}=={joint[name]}\n" for name in alone))
    subprocess.run(
        [str(python), "-m", "uv", "pip", "install", "-q", "--python", str(python)]
        + ["-r", str(REPO_ROOT / "requirements.txt"), "-c", str(constraints)],
        check=True,
        env=clean_environment(),
    )
    return python


@dataclass
class BuildFigures:
    """What one installer's build cost."""

    wall_s: float
    ready: dict[str, Any]
    size_bytes: int
    files: int
    nvidia_packages: int
    cache_bytes: int
    root: Path
    env: dict[str, str]


def build(python: Path, workdir: Path, requirements: Path, installer: str) -> BuildFigures:
    """Builds the volume environment with one installer and a cold cache; returns its figures."""
    root = workdir / f"volume-{installer}" / "Parakeet"
    root.parent.mkdir()
    cache = workdir / f"cache-{installer}"
    env = clean_environment(
        BOOTSTRAP_ROOT=str(root),
        BOOTSTRAP_REQUIREMENTS=str(requirements),
        BOOTSTRAP_INSTALLER=installer,
        BOOTSTRAP_REQUIRE_CUDA="0",
        PARAKEET_MODEL=str(workdir / "bundled.nemo"),  # a file model: no download in this figure
        UV_CACHE_DIR=str(cache),
        PIP_CACHE_DIR=str(cache),
    )
    log = workdir / f"build-{installer}.log"
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as output:
        done = subprocess.run(
            [str(python), str(REPO_ROOT / "bootstrap.py")],
            check=False,
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{installer} build failed; last lines:\n" + "".join(log.read_text().splitlines(True)[-30:])
        )
    [ready_file] = root.glob("envs/*/ready.json")
    ready = json.loads(ready_file.read_text())
    build_dir = ready_file.parent / ready["build"]
    torch_version = ready["versions"]["torch"]
    site_packages = next(build_dir.glob("lib/python*/site-packages"))
    nvidia = sorted(path.name for path in site_packages.glob("nvidia_*.dist-info"))
    if "+cpu" in torch_version or not nvidia:
        raise RuntimeError(f"{installer}: not the CUDA torch from PyPI ({torch_version}, nvidia: {nvidia})")
    size, files = disk_usage(build_dir)
    return BuildFigures(wall, ready, size, files, len(nvidia), disk_usage(cache)[0], root, env)


def check_times(python: Path, env: dict[str, str]) -> list[tuple[float, float]]:
    """Runs the worker's first ensure_environment() in fresh processes; returns (import ms, call ms)."""
    times = []
    for _ in range(CHECK_RUNS):
        done = subprocess.run(
            [str(python), "-c", CHECK_SCRIPT],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        imported, called = done.stdout.splitlines()[-1].split()
        times.append((float(imported), float(called)))
    return times


def main() -> int:
    """Runs the benchmark and prints its figures.

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--installers", default="uv,pip")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bootstrap-", dir=args.workdir))
    try:
        requirements = workdir / "requirements-volume-pypi.txt"
        requirements.write_text(pypi_requirements((REPO_ROOT / "requirements-volume.txt").read_text()))
        print(requirements.read_text(), flush=True)
        started = time.perf_counter()
        python = make_container(workdir, requirements)
        print(f"stand-in container ready: {time.perf_counter() - started:.0f} s", flush=True)
        for installer in args.installers.split(","):
            figures = build(python, workdir, requirements, installer)
            timings = figures.ready["timings"]
            print(
                f"{installer}: {figures.wall_s / 60:.2f} min in all (venv {timings['venv_s']:.1f} s, "
                f"install {timings['install_s'] / 60:.2f} min, verify {timings['verify_s']:.1f} s); "
                f"{figures.size_bytes / 1e9:.2f} GB on disk in {figures.files} files; "
                f"{figures.nvidia_packages} nvidia packages; "
                f"download cache {figures.cache_bytes / 1e9:.2f} GB; "
                f"versions {json.dumps(figures.ready['versions'], sort_keys=True)}",
                flush=True,
            )
            if installer == args.installers.split(",")[0]:
                times = check_times(python, figures.env)
                calls = [called for _, called in times]
                imports = [imported for imported, _ in times]
                print(
                    f"ready check, first ensure_environment() in a fresh process ({CHECK_RUNS} runs): "
                    f"median {statistics.median(calls):.1f} ms, max {max(calls):.1f} ms "
                    f"(import bootstrap: median {statistics.median(imports):.1f} ms)",
                    flush=True,
                )
            # Free the disk before the next installer.
            shutil.rmtree(figures.root.parent)
            shutil.rmtree(workdir / f"cache-{installer}", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
