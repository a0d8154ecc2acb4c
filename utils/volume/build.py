"""Building one volume environment: a venv on the volume, the pinned install, and a verification.

numpy and the container's other packages: the handler imports numpy (and runpod, boto3, ...) from the
container before NeMo exists, so the environment must use those exact versions. The venv reaches the
container's site-packages through a `.pth` file (like `--system-site-packages`, but also right when the
container itself runs in a venv), and the installer gets a constraints file pinning every container
distribution except pip/setuptools/wheel (base-image tooling that NeMo requires newer): the resolver can
only pick the container's numpy, so there is no second numpy and no ABI mix. A volume requirement that
needs another version fails the build loudly.
"""

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
import venv
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from utils.errors import BootstrapError
from utils.volume.gc import collect
from utils.volume.locking import Heartbeat, now_iso, once_on_volume, write_json
from utils.volume.processes import RESULT_PREFIX, run_streamed, step_failed
from utils.volume.publish import publish, read_ready, spec_dir
from utils.volume.settings import (
    BUILD_PREFIX,
    COMPLETE_NAME,
    CONSTRAINTS_NAME,
    CONTAINER_PTH_NAME,
    HEARTBEAT_NAME,
    LOCK_NAME,
    Environment,
    Installer,
    Reporter,
    Settings,
    log,
    site_packages_of,
)
from utils.volume.spec import SCHEMA_VERSION, Spec, compute_spec, installed_distributions

# Base-image tooling: NeMo needs a newer setuptools than python images ship, and none of these is
# imported by the handler before NeMo, so the environment may carry its own.
UNPINNED_CONTAINER_PACKAGES = frozenset({"pip", "setuptools", "wheel"})

# Installer settings that decide what gets installed are dropped so that the requirements file alone
# (hashed into the spec id) decides; transport and cache settings pass through.
INSTALLER_ENV_KEEP = frozenset(
    {
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_RETRIES",
        "PIP_PROXY",
        "PIP_CACHE_DIR",
        "PIP_NO_CACHE_DIR",
        "UV_CACHE_DIR",
        "UV_NO_CACHE",
        "UV_HTTP_TIMEOUT",
        "UV_NATIVE_TLS",
        "UV_CONCURRENT_DOWNLOADS",
        "UV_CONCURRENT_INSTALLS",
    }
)


# Run as `python -c VERIFY_SCRIPT <result prefix>`; the result is the one line after that prefix.
VERIFY_SCRIPT = """
import importlib.metadata, json, sys
import torch
import nemo.collections.asr

def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None

print(sys.argv[1] + json.dumps({
    "python": sys.version.split()[0],
    "torch": torch.__version__,
    "torch_cuda": torch.version.cuda,
    "cuda_available": torch.cuda.is_available(),
    "nemo_toolkit": version("nemo_toolkit"),
    "numpy": version("numpy"),
    "cuda_python": version("cuda-python"),
}))
"""


def gpu_present() -> bool:
    """Tells whether this machine shows an NVIDIA GPU to the process.

    Returns:
        True when an NVIDIA device node or nvidia-smi exists and CUDA_VISIBLE_DEVICES does not hide all.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in {"", "-1"}:
        return False
    return any(Path("/dev").glob("nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


def find_installer(choice: str = "auto") -> Installer:
    """Finds the package installer: uv when available (much faster), else pip.

    Args:
        choice: "auto", "uv" or "pip".

    Returns:
        The installer, started with the running interpreter where it is a module.

    Raises:
        BootstrapError: The choice is unknown or the chosen installer is not installed.
    """
    if choice not in {"auto", "uv", "pip"}:
        raise BootstrapError(f"BOOTSTRAP_INSTALLER must be auto, uv or pip, not {choice!r}")
    if choice in {"auto", "uv"}:
        if importlib.util.find_spec("uv") is not None:
            return Installer("uv", (sys.executable, "-m", "uv"))
        uv = shutil.which("uv")
        if uv is not None:
            return Installer("uv", (uv,))
        if choice == "uv":
            raise BootstrapError("BOOTSTRAP_INSTALLER is uv, but uv is not installed in the container")
    if importlib.util.find_spec("pip") is not None:
        return Installer("pip", (sys.executable, "-m", "pip"))
    raise BootstrapError("Neither uv nor pip is installed in the container to build the volume environment")


def install_command(
    installer: Installer,
    python: Path,
    requirements: Path,
    constraints: Path,
    extra_packages: Sequence[str] = (),
) -> list[str]:
    """Returns the command that installs the volume requirements into the venv of `python`.

    Args:
        installer: uv or pip.
        python: The target environment's interpreter.
        requirements: The pinned volume requirements file (may carry index options).
        constraints: Pins of the container's distributions.
        extra_packages: Further requirement specifiers.

    Returns:
        The argument list.
    """
    if installer.kind == "uv":
        return [
            *installer.command,
            "pip",
            "install",
            "--python",
            str(python),
            "--no-config",
            # uv otherwise takes a package only from the first index that has it, and the PyTorch
            # index carries old copies of common packages (numpy, ...).
            "--index-strategy",
            "unsafe-best-match",
            "--compile-bytecode",
            # The cache is on the container's disk, the venv on the volume: hard links cannot work.
            "--link-mode",
            "copy",
            "-r",
            str(requirements),
            "-c",
            str(constraints),
            *extra_packages,
        ]
    return [
        *installer.command,
        "--python",
        str(python),
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-r",
        str(requirements),
        "-c",
        str(constraints),
        *extra_packages,
    ]


def _installer_env() -> dict[str, str]:
    """Returns the environment for the installer: no ambient index, find-links or config files."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_")) or key in INSTALLER_ENV_KEEP
    }
    env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file at all
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _new_build_name() -> str:
    """Returns a build directory name no other builder can choose."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:40] or "host"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{BUILD_PREFIX}{stamp}-{host}-{os.getpid()}-{secrets.token_hex(4)}"


def ensure_built(
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    force: bool = False,
) -> Environment:
    """Returns the published environment of these settings, building it first when there is none.

    Args:
        settings: The build settings (default: `Settings.from_config()`).
        progress: Receives progress messages.
        force: Build and publish a fresh environment even when one is published (the old one stays
            on disk for the workers using it).

    Returns:
        The published environment.

    Raises:
        BootstrapError: Building, installing or verifying failed, or the volume is not writable.
    """
    settings = settings or Settings.from_config()
    report = Reporter(progress)
    spec = compute_spec(settings)
    directory = spec_dir(settings.root, spec.id)

    def published() -> Environment | None:
        return None if force else read_ready(directory, spec.id)

    def build() -> Environment:
        env = _build(settings, spec, directory, report, force=force)
        collect(settings.root, settings.gc_age)
        return env

    if (env := published()) is not None:
        return env
    return once_on_volume(
        settings,
        directory / LOCK_NAME,
        report,
        "building the environment",
        published,
        build,
        "The volume environment could not be written to the network volume",
    )


def _build(settings: Settings, spec: Spec, spec_dir: Path, report: Reporter, *, force: bool) -> Environment:
    """Builds, verifies and publishes one environment in a fresh directory of its own."""
    installer = settings.installer or find_installer(settings.installer_choice)
    require_cuda = gpu_present() if settings.require_cuda is None else settings.require_cuda
    build_dir = spec_dir / _new_build_name()
    build_dir.mkdir()
    log.info("building environment %s in %s with %s", spec.id, build_dir, installer.kind)
    timings: dict[str, float] = {}
    try:
        with Heartbeat(build_dir / HEARTBEAT_NAME, settings.heartbeat_interval):
            started = time.monotonic()
            report("Creating the environment on the volume")
            venv.EnvBuilder(with_pip=False, symlinks=True).create(build_dir)
            site_packages = site_packages_of(build_dir)
            (site_packages / CONTAINER_PTH_NAME).write_text(
                "".join(f"{path}\n" for path in settings.container_paths), encoding="utf-8"
            )
            pins = installed_distributions(settings.container_paths)
            constraints = build_dir / CONSTRAINTS_NAME
            constraints.write_text(
                "".join(
                    f"{name}=={version}\n"
                    for name, version in sorted(pins.items())
                    if name not in UNPINNED_CONTAINER_PACKAGES
                ),
                encoding="utf-8",
            )
            timings["venv_s"] = round(time.monotonic() - started, 3)

            started = time.monotonic()
            activity = f"Installing torch and NeMo with {installer.kind} (a few minutes, once per volume)"
            report(activity)
            python = build_dir / "bin" / "python"
            run = run_streamed(
                install_command(
                    installer, python, settings.requirements, constraints, settings.extra_packages
                ),
                tag="install",
                timeout=settings.install_timeout,
                report=report,
                activity=activity,
                env=_installer_env(),
                cwd=settings.requirements.parent,
            )
            if run.returncode is None:
                raise step_failed(
                    run,
                    "install",
                    f"Installing the volume environment took over {settings.install_timeout:.0f} s "
                    "and was stopped",
                )
            if run.returncode != 0:
                raise step_failed(
                    run,
                    "install",
                    f"Installing the volume environment failed ({installer.kind} exit code {run.returncode});"
                    " the worker log has the installer output",
                )
            timings["install_s"] = round(time.monotonic() - started, 3)

            started = time.monotonic()
            versions = _verify(python, build_dir, settings, report, require_cuda=require_cuda)
            timings["verify_s"] = round(time.monotonic() - started, 3)
            record = {
                "schema": SCHEMA_VERSION,
                "spec_id": spec.id,
                "build": build_dir.name,
                "built_at": now_iso(),
                "builder": {"host": socket.gethostname(), "pid": os.getpid()},
                "installer": installer.kind,
                "versions": {key: value for key, value in versions.items() if key != "cuda_available"},
                "verification": {
                    "ok": True,
                    "imports": ["torch", "nemo.collections.asr"],
                    "cuda_required": require_cuda,
                    "cuda_available": versions["cuda_available"],
                },
                "timings": timings,
                "requirements": settings.requirements.read_text(encoding="utf-8").splitlines(),
                "spec": spec.inputs,
            }
            write_json(build_dir / COMPLETE_NAME, record)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    return publish(spec_dir, spec, build_dir, record, force=force)


def _verify(
    python: Path, build_dir: Path, settings: Settings, report: Reporter, *, require_cuda: bool
) -> dict[str, Any]:
    """Imports torch and NeMo with the environment's interpreter and checks CUDA when required."""
    activity = "Verifying the environment (importing torch and NeMo)"
    report(activity)
    run = run_streamed(
        [str(python), "-c", VERIFY_SCRIPT, RESULT_PREFIX],
        tag="verify",
        timeout=settings.verify_timeout,
        report=report,
        activity=activity,
        cwd=build_dir,
    )
    if run.returncode != 0 or run.result is None:
        raise step_failed(
            run, "verify", "The volume environment failed verification: torch or NeMo could not be imported"
        )
    log.info("verified: %s", json.dumps(run.result, sort_keys=True))
    if require_cuda and not run.result["cuda_available"]:
        raise step_failed(
            run, "verify", "The volume environment's torch cannot use this worker's GPU (CUDA not available)"
        )
    return run.result
