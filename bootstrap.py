"""The volume environment: torch and NeMo installed once onto the network volume, shared by workers.

The container stays small; the first job (or `python bootstrap.py` on a one-off pod) builds a virtual
environment on the volume and every later worker reuses it. Stdlib only: this runs before the
environment exists.

Layout under `BOOTSTRAP_ROOT` (default `/runpod-volume/Parakeet`):

    envs/<spec-id>/ready.json          the published pointer: names the winning build, versions, checks
    envs/<spec-id>/.lock               flock file; saves duplicate work, correctness does not need it
    envs/<spec-id>/b-<time>-<host>-<pid>-<rand>/   one builder's venv, built in place (not relocatable)
    models/<org>--<name>.json          the model weights fetched into HF_HOME (default <root>/hf)
    logs/bootstrap.log                 every build, wait and collection, with the installer output

The spec id hashes everything that changes the environment's contents: python version and base
interpreter, platform and libc, the bytes of `requirements-volume.txt` (index URLs included), the extra
packages, the container's `requirements.txt` and the distributions installed in the container. A new
specification gets a new directory; a published build is never modified, so running workers keep theirs.

Publishing: each builder builds into a directory of its own, verifies it in a subprocess with the
environment's interpreter, then hard-links a fully written temp file to `ready.json` (`os.link` fails
when the name exists, on NFS too). The first link wins; a loser deletes its own never-published build
and uses the winner's. A `ready.json` that does not parse or names a missing build counts as absent and
is replaced with `os.replace` (also the fallback where hard links are unsupported, and `--force`).
Unfinished builds keep a heartbeat file fresh; one whose heartbeat is older than `BOOTSTRAP_GC_AGE_SECONDS`
is dead and removed by `--gc` and after each build. Complete builds are never collected automatically.

numpy and the container's other packages: the handler imports numpy (and runpod, boto3, ...) from the
container before NeMo exists, so the environment must use those exact versions. The venv reaches the
container's site-packages through a `.pth` file (like `--system-site-packages`, but also right when the
container itself runs in a venv), and the installer gets a constraints file pinning every container
distribution except pip/setuptools/wheel (base-image tooling that NeMo requires newer): the resolver can
only pick the container's numpy, so there is no second numpy and no ABI mix; pip reuses the container's
copies, uv (which looks only inside the target) installs byte-identical ones. A volume requirement that
needs another version fails the build loudly. The handler puts the environment's site-packages before
the container's, which is the order the verification subprocess sees.
"""

import argparse
import errno
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import venv
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Self

import config
from utils.errors import BootstrapError

log = logging.getLogger("parakeet.bootstrap")

SCHEMA_VERSION = 1
ENVS_DIR = "envs"
MODELS_DIR = "models"
LOGS_DIR = "logs"
LOG_NAME = "bootstrap.log"
READY_NAME = "ready.json"
LOCK_NAME = ".lock"
READY_TEMP_PREFIX = ".ready-"
TRASH_PREFIX = ".trash-"
BUILD_PREFIX = "b-"
BUILD_NAME_RE = re.compile(r"^b-[A-Za-z0-9_.-]+$")
HEARTBEAT_NAME = "bootstrap-building.json"
COMPLETE_NAME = "bootstrap-complete.json"
CONSTRAINTS_NAME = "bootstrap-constraints.txt"
CONTAINER_PTH_NAME = "_parakeet_container.pth"
RESULT_PREFIX = "BOOTSTRAP_RESULT "
# Base-image tooling: NeMo needs a newer setuptools than python images ship, and none of these is
# imported by the handler before NeMo, so the environment may carry its own.
UNPINNED_CONTAINER_PACKAGES = frozenset({"pip", "setuptools", "wheel"})
# Lines of an installer's or check's output repeated as one block in the log when it fails.
OUTPUT_TAIL_LINES = 40
# How often waits and long steps report progress (log line and progress callback).
REPORT_EVERY_SECONDS = 20.0
# How often a waiting worker retries the lock and looks for a published environment.
LOCK_POLL_SECONDS = 1.0
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

# NeMo's from_pretrained looks for `<name>.nemo` in the hub cache first (try_to_load_from_cache), so
# fetching exactly that file makes the first model load a cache hit.
# Run as `python -c FETCH_MODEL_SCRIPT <result prefix> <org/name>`.
FETCH_MODEL_SCRIPT = """
import json, sys
from huggingface_hub import hf_hub_download

prefix, repo = sys.argv[1:3]
path = hf_hub_download(repo_id=repo, filename=repo.rsplit("/", 1)[1] + ".nemo", library_name="nemo")
print(prefix + json.dumps({"path": path}))
"""


def _setup_logging() -> None:
    """Sends the bootstrap log to stdout on its own (it runs before the handler configures anything)."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s bootstrap[%(process)d] %(message)s")
        )
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


_setup_logging()


@dataclass(frozen=True)
class Installer:
    """A package installer: `kind` decides the arguments, `command` is how to start it."""

    kind: str  # "uv" or "pip"
    command: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Everything a build depends on; `Settings.from_config()` is what the worker uses."""

    root: Path
    requirements: Path
    container_requirements: Path
    container_paths: tuple[Path, ...]
    model: str
    hf_home: Path
    extra_packages: tuple[str, ...] = ()
    installer_choice: str = "auto"
    installer: Installer | None = None  # overrides installer_choice
    require_cuda: bool | None = None  # None: required when the machine has an NVIDIA GPU
    lock_timeout: float = config.BOOTSTRAP_LOCK_TIMEOUT_SECONDS
    lock_poll: float = LOCK_POLL_SECONDS
    use_lock: bool = True  # False only to test that correctness does not rest on the lock
    gc_age: float = config.BOOTSTRAP_GC_AGE_SECONDS
    heartbeat_interval: float = config.BOOTSTRAP_HEARTBEAT_SECONDS
    install_timeout: float = config.BOOTSTRAP_INSTALL_TIMEOUT_SECONDS
    verify_timeout: float = config.BOOTSTRAP_VERIFY_TIMEOUT_SECONDS
    model_timeout: float = config.BOOTSTRAP_MODEL_TIMEOUT_SECONDS
    skip_if_nemo_importable: bool = True

    @classmethod
    def from_config(cls) -> "Settings":
        """Builds the settings from `config` and the running interpreter.

        Returns:
            The settings of this worker.

        Raises:
            BootstrapError: BOOTSTRAP_REQUIRE_CUDA is not "auto", "1" or "0" (or a boolean word).
        """
        cuda_choices = {
            "auto": None,
            "1": True,
            "true": True,
            "yes": True,
            "0": False,
            "false": False,
            "no": False,
        }
        if config.BOOTSTRAP_REQUIRE_CUDA not in cuda_choices:
            raise BootstrapError(
                f"BOOTSTRAP_REQUIRE_CUDA must be auto, 1 or 0, not {config.BOOTSTRAP_REQUIRE_CUDA!r}"
            )
        return cls(
            root=config.BOOTSTRAP_ROOT,
            requirements=config.BOOTSTRAP_REQUIREMENTS,
            container_requirements=config.CONTAINER_REQUIREMENTS,
            container_paths=running_site_packages(),
            model=config.PARAKEET_MODEL,
            hf_home=config.HF_HOME,
            extra_packages=config.BOOTSTRAP_EXTRA_PACKAGES,
            installer_choice=config.BOOTSTRAP_INSTALLER,
            require_cuda=cuda_choices[config.BOOTSTRAP_REQUIRE_CUDA],
        )


@dataclass(frozen=True)
class Spec:
    """The identity of an environment: `id` is a hash of `inputs`."""

    id: str
    inputs: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True)
class Environment:
    """A published, verified build; `record` is its `ready.json`."""

    spec_id: str
    build_dir: Path
    record: dict[str, Any] = field(hash=False, compare=False)

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.build_dir / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        """The environment's site-packages directory."""
        return _site_packages(self.build_dir)


def _site_packages(build_dir: Path) -> Path:
    """Returns the site-packages directory of a POSIX venv made by this interpreter's version."""
    return build_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


class _Reporter:
    """Sends a progress message to the log and to the caller's callback (whose failures are only logged)."""

    def __init__(self, callback: Callable[[str], None] | None) -> None:
        self._callback = callback

    def __call__(self, message: str) -> None:
        log.info("%s", message)
        if self._callback is None:
            return
        try:
            self._callback(message)
        except Exception:
            # A lost progress report must not fail the build.
            log.exception("the progress callback failed")


# --- Identity ------------------------------------------------------------------------------------


def running_site_packages() -> tuple[Path, ...]:
    """Returns the running interpreter's site-packages directories (the container's packages).

    Returns:
        Existing directories, in import order.
    """
    paths = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    return tuple(Path(p) for p in dict.fromkeys(paths) if os.path.isdir(p))


def _normalize_name(name: str) -> str:
    """Returns a distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(paths: Sequence[Path]) -> dict[str, str]:
    """Lists the distributions installed in `paths` from their metadata directory names.

    Reading names only (no metadata files) keeps the ready check within milliseconds.

    Args:
        paths: site-packages directories; the first one holding a name wins, as on sys.path.

    Returns:
        Normalized name to version.
    """
    found: dict[str, str] = {}
    pattern = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d[\d.]*)?\.(?:dist|egg)-info$")
    for path in paths:
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        for entry in sorted(entries):
            match = pattern.match(entry)
            if match:
                found.setdefault(_normalize_name(match["name"]), match["version"])
    return found


def compute_spec(settings: Settings) -> Spec:
    """Computes the specification id of the environment these settings describe.

    Args:
        settings: The build settings.

    Returns:
        The spec (id and the inputs hashed into it).

    Raises:
        BootstrapError: The volume requirements file cannot be read.
    """
    try:
        requirements = settings.requirements.read_bytes()
    except OSError as exc:
        log.error("cannot read the volume requirements %s: %s", settings.requirements, exc)
        raise BootstrapError("The volume environment's requirements file is missing or unreadable") from exc
    try:
        container_requirements: str | None = hashlib.sha256(
            settings.container_requirements.read_bytes()
        ).hexdigest()
    except FileNotFoundError:
        container_requirements = None
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown"
    except (ValueError, OSError):
        libc = "unknown"
    inputs = {
        "schema": SCHEMA_VERSION,
        "python": {
            "implementation": sys.implementation.name,
            "version": platform.python_version(),
            "cache_tag": sys.implementation.cache_tag,
            # The venv's bin/python links to this binary.
            "executable": os.path.realpath(sys._base_executable),
        },
        "platform": {"platform": sysconfig.get_platform(), "libc": libc},
        "requirements_sha256": hashlib.sha256(requirements).hexdigest(),
        "extra_packages": list(settings.extra_packages),
        "container_requirements_sha256": container_requirements,
        "container_packages": sorted(
            f"{name}=={version}"
            for name, version in installed_distributions(settings.container_paths).items()
        ),
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return Spec(id=digest[:16], inputs=inputs)


# --- Finding and activating -----------------------------------------------------------------------


def _spec_dir(root: Path, spec_id: str) -> Path:
    """Returns the directory that holds every build of one specification."""
    return root / ENVS_DIR / spec_id


def _read_ready(spec_dir: Path, spec_id: str) -> Environment | None:
    """Reads a spec's `ready.json`; anything unreadable, inconsistent or pointing nowhere is absent."""
    path = spec_dir / READY_NAME
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    build = record.get("build") if isinstance(record, dict) else None
    if (
        not isinstance(build, str)
        or not BUILD_NAME_RE.match(build)
        or record.get("schema") != SCHEMA_VERSION
        or record.get("spec_id") != spec_id
    ):
        log.warning("ignoring %s: not a ready record of spec %s", path, spec_id)
        return None
    env = Environment(spec_id=spec_id, build_dir=spec_dir / build, record=record)
    if not env.site_packages.is_dir() or not env.python.exists():
        log.warning("ignoring %s: build %s is missing", path, build)
        return None
    return env


def find_ready(settings: Settings, spec: Spec | None = None) -> Environment | None:
    """Returns the published environment for these settings, or None (the fast check: milliseconds).

    Args:
        settings: The build settings.
        spec: The spec when already computed.

    Returns:
        The published environment, or None when there is none (or its record is invalid).

    Raises:
        BootstrapError: The volume requirements file cannot be read.
    """
    spec = spec or compute_spec(settings)
    return _read_ready(_spec_dir(settings.root, spec.id), spec.id)


def activate(env: Environment, container_paths: Sequence[Path] = ()) -> Path:
    """Makes the environment's packages importable in this process.

    The site-packages directory (and its .pth files) goes before the container's site-packages, the
    order the environment's own interpreter has, so imports resolve as they did in the verification.

    Args:
        env: The published environment.
        container_paths: The container's site-packages directories.

    Returns:
        The activated site-packages directory.
    """
    before = list(sys.path)
    site.addsitedir(str(env.site_packages))
    added = [entry for entry in sys.path if entry not in before]
    container = {str(path) for path in container_paths}
    position = next((i for i, entry in enumerate(before) if entry in container), len(before))
    sys.path[:] = before[:position] + added + before[position:]
    return env.site_packages


_activation_lock = threading.Lock()
_activated: dict[Settings, Path] = {}


def ensure_environment(
    progress: Callable[[str], None] | None = None, *, settings: Settings | None = None
) -> Path | None:
    """Makes torch and NeMo importable: reuses or builds the volume environment and activates it.

    Called by the handler before it first imports NeMo. Skipped when this interpreter already has NeMo
    (a baked image, local development, CI). A ready environment costs a few milliseconds; a failure
    raises, and the next call tries again.

    Args:
        progress: Receives short human-readable progress messages (waiting, installing, verifying).
        settings: Overrides `Settings.from_config()` (tests).

    Returns:
        The activated site-packages directory, or None when skipped.

    Raises:
        BootstrapError: The environment or the model could not be built, verified or fetched.
    """
    settings = settings or Settings.from_config()
    with _activation_lock:
        if settings in _activated:
            return _activated[settings]
        if settings.skip_if_nemo_importable and importlib.util.find_spec("nemo") is not None:
            return None
        env = find_ready(settings) or ensure_built(settings, progress)
        ensure_model(settings, env, progress)
        # NeMo's from_pretrained reads the hub cache from HF_HOME: the volume's, where the model is.
        os.environ["HF_HOME"] = str(settings.hf_home)
        site_packages = activate(env, settings.container_paths)
        _activated[settings] = site_packages
        log.info("environment %s active (%s)", env.spec_id, env.build_dir.name)
        return site_packages


# --- Building ------------------------------------------------------------------------------------


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


@dataclass
class _Run:
    """The outcome of a streamed subprocess: exit code (None: timed out), output tail, result line."""

    returncode: int | None
    tail: deque[str]
    result: dict[str, Any] | None


def _pump(stream: IO[str], tail: deque[str], results: list[str], tag: str) -> None:
    """Logs each output line of a subprocess, keeping the last ones and any result line."""
    for line in stream:
        line = line.rstrip()
        if line.startswith(RESULT_PREFIX):
            results.append(line[len(RESULT_PREFIX) :])
            continue
        tail.append(line)
        log.info("[%s] %s", tag, line)


def _run_streamed(
    command: Sequence[str],
    *,
    tag: str,
    timeout: float,
    report: _Reporter,
    activity: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> _Run:
    """Runs a command in its own process group, logging its output and reporting progress while it runs.

    Args:
        command: The command.
        tag: Prefix of its log lines.
        timeout: Seconds after which the whole process group is killed.
        report: Progress reporter.
        activity: What is running, for periodic progress messages.
        env: Its environment (default: this process's).
        cwd: Its working directory.

    Returns:
        Exit code (None when it timed out), the last output lines and the parsed result line, if any.

    Raises:
        BootstrapError: The command could not be started.
    """
    # Inline scripts (python -c) are constants of this module; the log names them instead.
    log.info("running %s", shlex.join("<script>" if "\n" in arg else arg for arg in command))
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    results: list[str] = []
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            cwd=cwd,
            start_new_session=True,  # pip --python and NeMo start children; a timeout kills them all
        )
    except OSError as exc:
        log.error("cannot start %s: %s", command[0], exc)
        raise BootstrapError(
            f"The volume environment could not be built: the {tag} step could not start"
        ) from exc
    assert process.stdout is not None
    reader = threading.Thread(target=_pump, args=(process.stdout, tail, results, tag), daemon=True)
    reader.start()
    started = time.monotonic()
    returncode: int | None = None
    try:
        while returncode is None:
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                break
            try:
                returncode = process.wait(timeout=min(REPORT_EVERY_SECONDS, timeout - elapsed))
            except subprocess.TimeoutExpired:
                report(f"{activity} ({time.monotonic() - started:.0f} s so far)")
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended between the poll and the kill
            process.wait()
        reader.join()
    result = None
    if results:
        try:
            result = json.loads(results[-1])
        except ValueError:
            log.error("[%s] unreadable result line: %s", tag, results[-1])
    return _Run(returncode, tail, result)


def _failed(run: _Run, tag: str, message: str) -> BootstrapError:
    """Logs the tail of a failed step's output and returns the client-facing error."""
    log.error("[%s] failed (exit code %s); last output lines:\n%s", tag, run.returncode, "\n".join(run.tail))
    return BootstrapError(message)


def _builder_info() -> dict[str, Any]:
    """Identifies this builder in lock, heartbeat and ready files."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": _now_iso()}


def _now_iso() -> str:
    """Returns the current UTC time in ISO 8601, seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_build_name() -> str:
    """Returns a build directory name no other builder can choose."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:40] or "host"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{BUILD_PREFIX}{stamp}-{host}-{os.getpid()}-{secrets.token_hex(4)}"


def _write_json(path: Path, data: dict[str, Any], *, durable: bool = False) -> None:
    """Writes a JSON file; `durable` also flushes it to storage before returning."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")
        if durable:
            file.flush()
            os.fsync(file.fileno())


class _Heartbeat:
    """Keeps a file's mtime fresh while a build runs, so collectors can tell live builds from dead ones."""

    def __init__(self, path: Path, interval: float) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Self:
        _write_json(self._path, _builder_info())
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                os.utime(self._path)
            except OSError as exc:
                log.warning("heartbeat %s failed: %s", self._path, exc)


def _read_holder(lock_path: Path) -> str:
    """Describes who holds a lock, from what the holder wrote into the lock file."""
    try:
        holder = json.loads(lock_path.read_text(encoding="utf-8"))
        return f"{holder['host']} pid {holder['pid']} since {holder['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another worker"


@contextmanager
def _locked(
    lock_path: Path, settings: Settings, report: _Reporter, what: str, done: Callable[[], bool]
) -> Iterator[None]:
    """Holds an exclusive flock on `lock_path` if it can be had in time.

    Waiting stops early when `done()` becomes true (another worker finished). After
    `settings.lock_timeout`, or where the filesystem has no locks, the body runs unlocked: the publish
    protocol, not the lock, keeps builds correct.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666) if settings.use_lock else None
    locked = False
    try:
        started = time.monotonic()
        next_report = started + REPORT_EVERY_SECONDS
        while fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            except OSError as exc:
                log.warning("cannot lock %s (%s); going on without the lock", lock_path, exc)
                break
            else:
                locked = True
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(_builder_info()).encode(), 0)
                break
            if done():
                break
            waited = time.monotonic() - started
            if waited >= settings.lock_timeout:
                log.warning(
                    "waited %.0f s for %s held by %s; going on without the lock",
                    waited,
                    what,
                    _read_holder(lock_path),
                )
                break
            if time.monotonic() >= next_report:
                next_report += REPORT_EVERY_SECONDS
                log.info("waiting for %s held by %s (%.0f s)", what, _read_holder(lock_path), waited)
                report(f"Waiting for another worker to finish {what} ({waited:.0f} s)")
            time.sleep(settings.lock_poll)
        yield
    finally:
        if fd is not None:
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextmanager
def _volume_log(root: Path) -> Iterator[None]:
    """Creates the bootstrap root and adds the volume log file to the log for the duration.

    Raises:
        BootstrapError: The root's parent (the volume mount) does not exist.
    """
    if not root.parent.is_dir():
        log.error("%s does not exist: is the network volume attached?", root.parent)
        raise BootstrapError("The network volume is not mounted, so the environment cannot be built")
    (root / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(root / LOGS_DIR / LOG_NAME, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {socket.gethostname()}[%(process)d] %(message)s")
    )
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


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
    report = _Reporter(progress)
    spec = compute_spec(settings)
    if not force and (env := find_ready(settings, spec)) is not None:
        return env
    try:
        with _volume_log(settings.root):
            spec_dir = _spec_dir(settings.root, spec.id)
            spec_dir.mkdir(parents=True, exist_ok=True)

            def published() -> bool:
                return not force and _read_ready(spec_dir, spec.id) is not None

            with _locked(spec_dir / LOCK_NAME, settings, report, "building the environment", published):
                if not force and (env := _read_ready(spec_dir, spec.id)) is not None:
                    log.info("environment %s was published by another worker", spec.id)
                    return env
                env = _build(settings, spec, spec_dir, report, force=force)
                _collect(settings.root, settings.gc_age)
                return env
    except OSError as exc:
        log.exception("the volume environment could not be written")
        raise BootstrapError(
            f"The volume environment could not be written to the network volume: {exc.strerror or exc}"
        ) from exc


def _build(settings: Settings, spec: Spec, spec_dir: Path, report: _Reporter, *, force: bool) -> Environment:
    """Builds, verifies and publishes one environment in a fresh directory of its own."""
    installer = settings.installer or find_installer(settings.installer_choice)
    require_cuda = gpu_present() if settings.require_cuda is None else settings.require_cuda
    build_dir = spec_dir / _new_build_name()
    build_dir.mkdir()
    log.info("building environment %s in %s with %s", spec.id, build_dir, installer.kind)
    timings: dict[str, float] = {}
    try:
        with _Heartbeat(build_dir / HEARTBEAT_NAME, settings.heartbeat_interval):
            started = time.monotonic()
            report("Creating the environment on the volume")
            venv.EnvBuilder(with_pip=False, symlinks=True).create(build_dir)
            site_packages = _site_packages(build_dir)
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
            run = _run_streamed(
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
                raise _failed(
                    run,
                    "install",
                    f"Installing the volume environment took over {settings.install_timeout:.0f} s and was stopped",
                )
            if run.returncode != 0:
                raise _failed(
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
                "built_at": _now_iso(),
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
            _write_json(build_dir / COMPLETE_NAME, record)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    return _publish(spec_dir, spec, build_dir, record, force=force)


def _verify(
    python: Path, build_dir: Path, settings: Settings, report: _Reporter, *, require_cuda: bool
) -> dict[str, Any]:
    """Imports torch and NeMo with the environment's interpreter and checks CUDA when required."""
    activity = "Verifying the environment (importing torch and NeMo)"
    report(activity)
    run = _run_streamed(
        [str(python), "-c", VERIFY_SCRIPT, RESULT_PREFIX],
        tag="verify",
        timeout=settings.verify_timeout,
        report=report,
        activity=activity,
        cwd=build_dir,
    )
    if run.returncode != 0 or run.result is None:
        raise _failed(
            run, "verify", "The volume environment failed verification: torch or NeMo could not be imported"
        )
    log.info("verified: %s", json.dumps(run.result, sort_keys=True))
    if require_cuda and not run.result["cuda_available"]:
        raise _failed(
            run, "verify", "The volume environment's torch cannot use this worker's GPU (CUDA not available)"
        )
    return run.result


def _link_first(temp: Path, ready: Path) -> bool | None:
    """Publishes `temp` as `ready` only if `ready` does not exist.

    Returns:
        True when linked, False when `ready` already exists, None when the filesystem has no hard links.
    """
    try:
        os.link(temp, ready)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}:
            log.warning("hard links unsupported here (%s); publishing with os.replace", exc)
            return None
        raise
    return True


def _discard(build_dir: Path) -> None:
    """Deletes a build that was never published (the complete marker first, so a partial delete is collectable)."""
    (build_dir / COMPLETE_NAME).unlink(missing_ok=True)
    shutil.rmtree(build_dir, ignore_errors=True)


def _publish(
    spec_dir: Path, spec: Spec, build_dir: Path, record: dict[str, Any], *, force: bool
) -> Environment:
    """Publishes a verified build: the first builder to link `ready.json` wins."""
    ready = spec_dir / READY_NAME
    temp = spec_dir / f"{READY_TEMP_PREFIX}{build_dir.name}.tmp"
    _write_json(temp, record, durable=True)
    try:
        if not force:
            linked = _link_first(temp, ready)
            if linked:
                log.info("published environment %s: %s", spec.id, build_dir.name)
                return Environment(spec.id, build_dir, record)
            winner = _read_ready(spec_dir, spec.id)
            if winner is not None:
                log.info("%s was published first; discarding %s", winner.build_dir.name, build_dir.name)
                _discard(build_dir)
                return winner
            if linked is False:
                log.warning("replacing the invalid %s", ready)
        os.replace(temp, ready)
        log.info("published environment %s: %s", spec.id, build_dir.name)
        return Environment(spec.id, build_dir, record)
    finally:
        temp.unlink(missing_ok=True)


# --- Model ---------------------------------------------------------------------------------------


def _is_hub_name(model: str) -> bool:
    """Tells whether PARAKEET_MODEL names a Hugging Face repository (org/name) rather than a file."""
    return model.count("/") == 1 and not model.endswith(".nemo") and not os.path.exists(model)


def _model_marker(root: Path, model: str) -> Path:
    """Returns the file that records where a fetched model lies."""
    return root / MODELS_DIR / (model.replace("/", "--") + ".json")


def _model_ready(marker: Path) -> bool:
    """Tells whether a model's marker names a file that exists."""
    try:
        return Path(json.loads(marker.read_bytes())["path"]).is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_model(settings: Settings, env: Environment, progress: Callable[[str], None] | None = None) -> None:
    """Fetches the model weights into HF_HOME on the volume when PARAKEET_MODEL is a hub name.

    Runs the environment's interpreter with huggingface_hub, so this process needs neither.

    Args:
        settings: The settings (model name, HF_HOME, root).
        env: The environment to run the download with.
        progress: Receives progress messages.

    Raises:
        BootstrapError: The download failed.
    """
    if not _is_hub_name(settings.model):
        return
    marker = _model_marker(settings.root, settings.model)
    if _model_ready(marker):
        return
    report = _Reporter(progress)
    try:
        with _volume_log(settings.root):
            marker.parent.mkdir(exist_ok=True)
            lock = marker.with_suffix(".lock")
            with _locked(
                lock, settings, report, f"downloading {settings.model}", lambda: _model_ready(marker)
            ):
                if _model_ready(marker):
                    return
                activity = f"Downloading {settings.model} to the volume"
                report(activity)
                run = _run_streamed(
                    [str(env.python), "-c", FETCH_MODEL_SCRIPT, RESULT_PREFIX, settings.model],
                    tag="model",
                    timeout=settings.model_timeout,
                    report=report,
                    activity=activity,
                    env={**os.environ, "HF_HOME": str(settings.hf_home)},
                    cwd=env.build_dir,
                )
                if run.returncode != 0 or run.result is None:
                    raise _failed(run, "model", f"Downloading the model {settings.model} failed")
                temp = marker.with_name(f".{marker.name}.{secrets.token_hex(4)}.tmp")
                _write_json(
                    temp, {"model": settings.model, "path": run.result["path"], "fetched_at": _now_iso()}
                )
                os.replace(temp, marker)
                log.info("model %s is in %s", settings.model, run.result["path"])
    except OSError as exc:
        log.exception("the model could not be stored")
        raise BootstrapError(
            f"The model could not be stored on the network volume: {exc.strerror or exc}"
        ) from exc


# --- Collecting dead builds ----------------------------------------------------------------------


def _age(entry: Path, now: float) -> float:
    """Seconds since a build last showed life (heartbeat, else the directory's own mtime)."""
    heartbeat = entry / HEARTBEAT_NAME
    try:
        return now - heartbeat.stat().st_mtime
    except FileNotFoundError:
        return now - entry.stat().st_mtime


def _referenced_build(spec_dir: Path) -> str | None:
    """Returns the build named by a spec's ready.json, whatever its validity."""
    try:
        record = json.loads((spec_dir / READY_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    return record.get("build") if isinstance(record, dict) else None


def _collect(root: Path, max_age: float) -> list[Path]:
    """Removes dead unpublished builds, stale temp files and interrupted removals under `root`."""
    envs = root / ENVS_DIR
    if not envs.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    for spec_dir in sorted(envs.iterdir()):
        if not spec_dir.is_dir():
            continue
        referenced = _referenced_build(spec_dir)
        for entry in sorted(spec_dir.iterdir()):
            try:
                if entry.name.startswith(TRASH_PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name.startswith(READY_TEMP_PREFIX):
                    if now - entry.stat().st_mtime <= max_age:
                        continue
                    entry.unlink()
                elif (
                    BUILD_NAME_RE.match(entry.name)
                    and entry.name != referenced
                    and entry.is_dir()
                    and not (entry / COMPLETE_NAME).exists()
                    and _age(entry, now) > max_age
                ):
                    # Renaming first is atomic: of two collectors, one gets the build.
                    trash = spec_dir / f"{TRASH_PREFIX}{entry.name}-{secrets.token_hex(4)}"
                    os.rename(entry, trash)
                    log.info("removing dead build %s (no heartbeat for %.0f s)", entry, max_age)
                    shutil.rmtree(trash, ignore_errors=True)
                else:
                    continue
                removed.append(entry)
            except FileNotFoundError:
                continue  # another collector got there first
            except OSError as exc:
                log.warning("cannot remove %s: %s", entry, exc)
    return removed


def collect_garbage(settings: Settings | None = None) -> list[Path]:
    """Removes builds whose builder died (no heartbeat for `settings.gc_age`) and stale temp files.

    Published and complete builds are kept: running workers may use them.

    Args:
        settings: The settings (root, gc age); default `Settings.from_config()`.

    Returns:
        The removed paths.

    Raises:
        BootstrapError: The volume is not mounted.
    """
    settings = settings or Settings.from_config()
    if not (settings.root / ENVS_DIR).is_dir():
        return []
    with _volume_log(settings.root):
        removed = _collect(settings.root, settings.gc_age)
        log.info("collected %d leftovers", len(removed))
        return removed


# --- CLI -----------------------------------------------------------------------------------------


def check(settings: Settings) -> dict[str, Any]:
    """Describes the state of this worker's environment without changing anything.

    Args:
        settings: The settings.

    Returns:
        A JSON-ready status; `ready` is true when a published environment exists.
    """
    started = time.perf_counter()
    status: dict[str, Any] = {"ready": False, "root": str(settings.root)}
    status["nemo_importable_here"] = importlib.util.find_spec("nemo") is not None
    try:
        spec = compute_spec(settings)
        status["spec_id"] = spec.id
        env = find_ready(settings, spec)
    except BootstrapError as exc:
        status["error"] = str(exc)
        env = None
    if env is not None:
        status.update(
            ready=True,
            build_dir=str(env.build_dir),
            site_packages=str(env.site_packages),
            built_at=env.record.get("built_at"),
            versions=env.record.get("versions"),
            verification=env.record.get("verification"),
        )
    if _is_hub_name(settings.model):
        status["model_ready"] = _model_ready(_model_marker(settings.root, settings.model))
    status["check_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: build now (default), `--check`, `--force` or `--gc`.

    Args:
        argv: Arguments (default: sys.argv[1:]).

    Returns:
        The exit status: 0 on success (for --check: ready), 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        description="Build or inspect the torch/NeMo environment on the network volume."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="print a JSON status; exit 0 when ready")
    action.add_argument("--force", action="store_true", help="build and publish a fresh environment")
    action.add_argument("--gc", action="store_true", help="remove leftovers of dead builds")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_config()
        if args.check:
            status = check(settings)
            print(json.dumps(status, sort_keys=True))
            return 0 if status["ready"] else 1
        if args.gc:
            removed = collect_garbage(settings)
            print(json.dumps({"removed": [str(path) for path in removed]}))
            return 0
        env = ensure_built(settings, force=args.force)
        ensure_model(settings, env)
    except BootstrapError as exc:
        log.error("%s", exc)
        return 1
    print(
        json.dumps({"ready": True, "build_dir": str(env.build_dir), "site_packages": str(env.site_packages)})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
