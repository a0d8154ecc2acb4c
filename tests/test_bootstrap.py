"""The volume environment bootstrap, with real virtual environments and real installers.

Environments are built from a local wheelhouse of stand-in wheels (tests/bootstrap_wheels.py) with
`--no-index`, so no package index is needed; races and killed builders are real processes.
"""

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import config
from tests.support.bootstrap_child import settings_to_json
from tests.support.bootstrap_wheels import build_wheelhouse, unpack_wheel
from utils import volume as volume_env
from utils.errors import BootstrapError
from utils.volume import publish
from utils.volume import settings as layout

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD = REPO_ROOT / "tests" / "support" / "bootstrap_child.py"
WRAPPER = REPO_ROOT / "tests" / "support" / "bootstrap_installer.py"
# The interpreter this venv was made from: it has pip and numpy but no torch or NeMo, like the
# container. The CLI tests run under it.
BASE_PYTHON = os.path.realpath(sys._base_executable)
INSTALLER = volume_env.find_installer("auto")
PROCESS_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def wheelhouse() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bootstrap-wheels-"))
    try:
        build_wheelhouse(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def volume() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bootstrap-volume-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def isolated_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets a test activate environments: sys.path and HF_HOME are restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("HF_HOME", "set-by-the-test")


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
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_SECONDS,
    )


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
        cwd=REPO_ROOT,
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


def test_four_racing_processes_publish_exactly_one_environment(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))

    results = run_children(settings, 4)

    assert len({result["build_dir"] for result in results}) == 1
    assert builds(settings) == [Path(results[0]["build_dir"])]
    assert volume_env.find_ready(settings).build_dir == Path(results[0]["build_dir"])
    # The lock saved the work: the three others waited instead of building and discarding.
    log = volume_log(settings)
    assert log.count("building environment") == 1
    assert "discarding" not in log


def test_without_the_lock_the_first_publisher_wins_and_the_others_discard_theirs(
    volume: Path, wheelhouse: Path
) -> None:
    # The wrapper holds each installer until all four run, so four builds really overlap.
    marks = volume / "marks"
    marks.mkdir()
    wrapped = volume_env.Installer(
        INSTALLER.kind,
        (sys.executable, str(WRAPPER), "--mark", str(marks), "--barrier", "4", "--", *INSTALLER.command),
    )
    settings = make_settings(
        volume, write_requirements(volume, wheelhouse), installer=wrapped, use_lock=False
    )

    results = run_children(settings, 4)

    assert len(list(marks.iterdir())) == 4
    winner = Path(results[0]["build_dir"])
    assert {Path(result["build_dir"]) for result in results} == {winner}
    assert builds(settings) == [winner]
    assert volume_log(settings).count("was published first; discarding") == 3
    assert not list(spec_dir(settings).glob(layout.READY_TEMP_PREFIX + "*"))


def test_a_killed_builder_is_ignored_by_the_next_build_and_removed_by_gc(
    volume: Path, wheelhouse: Path
) -> None:
    marks = volume / "marks"
    marks.mkdir()
    stalled = volume_env.Installer(
        INSTALLER.kind,
        (sys.executable, str(WRAPPER), "--mark", str(marks), "--sleep", "300", "--", *INSTALLER.command),
    )
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    builder = subprocess.Popen(
        [sys.executable, str(CHILD), settings_to_json(replace(settings, installer=stalled))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
        while not list(marks.iterdir()):
            assert time.monotonic() < deadline, "the installer never started"
            assert builder.poll() is None, "the builder ended before installing"
            time.sleep(0.05)
    finally:
        # The worker dies mid-install, and its installer with it (as when a container is stopped).
        builder.kill()
        builder.wait()
        for mark in marks.iterdir():
            os.kill(int(mark.name), signal.SIGKILL)
    [orphan] = builds(settings)
    assert volume_env.find_ready(settings) is None

    env = volume_env.ensure_built(settings)

    assert env.build_dir != orphan
    assert orphan.is_dir()  # its heartbeat is younger than gc_age: it could still be alive
    collected = run_cli("--gc", BOOTSTRAP_ROOT=str(settings.root), BOOTSTRAP_GC_AGE_SECONDS="0")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert json.loads(collected.stdout.splitlines()[-1])["removed"] == [str(orphan)]
    assert builds(settings) == [env.build_dir]
    assert volume_env.find_ready(settings) == env


def test_publishing_links_only_when_no_ready_json_exists(volume: Path) -> None:
    ready = volume / layout.READY_NAME
    first = volume / "first.tmp"
    first.write_text("first", encoding="utf-8")
    second = volume / "second.tmp"
    second.write_text("second", encoding="utf-8")

    assert publish.link_first(first, ready) is True
    assert publish.link_first(second, ready) is False
    assert ready.read_text(encoding="utf-8") == "first"


def test_an_unreadable_or_inconsistent_ready_json_counts_as_absent(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    first = volume_env.ensure_built(settings)
    ready = first.build_dir.parent / layout.READY_NAME
    valid = json.loads(ready.read_text(encoding="utf-8"))
    broken = [
        b"",
        ready.read_bytes()[:40],
        b"\x00\xff\xfe not json",
        json.dumps({**valid, "build": "b-missing-build"}).encode(),
        json.dumps({**valid, "spec_id": "0" * 16}).encode(),
        json.dumps({**valid, "build": "../escape"}).encode(),
        b"[1, 2]",
    ]
    for content in broken:
        ready.write_bytes(content)
        assert volume_env.find_ready(settings) is None, content

    second = volume_env.ensure_built(settings)

    assert second.build_dir != first.build_dir
    assert volume_env.find_ready(settings) == second
    assert first.build_dir.is_dir()  # complete builds stay: a worker may still use one


def test_force_publishes_a_fresh_build_and_leaves_the_old_one(volume: Path, wheelhouse: Path) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))
    first = volume_env.ensure_built(settings)

    second = volume_env.ensure_built(settings, force=True)

    assert second.build_dir != first.build_dir
    assert volume_env.find_ready(settings) == second
    assert (first.site_packages / "torch" / "__init__.py").is_file()


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.lstat().st_mtime_ns, p.lstat().st_size)
        for p in directory.rglob("*")
    }


def test_a_changed_specification_gets_a_new_directory_and_the_old_one_is_untouched(
    volume: Path, wheelhouse: Path
) -> None:
    requirements = write_requirements(volume, wheelhouse)
    settings = make_settings(volume, requirements)
    old = volume_env.ensure_built(settings)
    before = snapshot(old.build_dir.parent)

    write_requirements(volume, wheelhouse, "huggingface_hub==0.0.1")
    new = volume_env.ensure_built(settings)

    assert new.spec_id != old.spec_id
    assert new.build_dir.parent != old.build_dir.parent
    assert (new.site_packages / "huggingface_hub").is_dir()
    assert snapshot(old.build_dir.parent) == before
    assert volume_env.find_ready(settings) == new


def test_the_spec_id_covers_every_input(volume: Path, wheelhouse: Path) -> None:
    requirements = write_requirements(volume, wheelhouse)
    container = volume / "container-site"
    container.mkdir()
    settings = make_settings(volume, requirements)
    base = volume_env.compute_spec(settings).id
    assert volume_env.compute_spec(make_settings(volume, requirements)).id == base

    ids = {base}
    settings.container_requirements.write_text("numpy==2.4.6\n", encoding="utf-8")
    ids.add(volume_env.compute_spec(settings).id)
    unpack_wheel(wheelhouse / "numpy-1.26.4-py3-none-any.whl", container)
    ids.add(volume_env.compute_spec(replace(settings, container_paths=(container,))).id)
    ids.add(volume_env.compute_spec(replace(settings, extra_packages=("einops==0.8.1",))).id)
    requirements.write_text(
        requirements.read_text(encoding="utf-8") + "# any byte counts\n", encoding="utf-8"
    )
    ids.add(volume_env.compute_spec(settings).id)
    assert len(ids) == 5


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


def test_an_installer_past_its_timeout_is_killed_with_its_children(volume: Path, wheelhouse: Path) -> None:
    marks = volume / "marks"
    marks.mkdir()
    stalled = volume_env.Installer(
        INSTALLER.kind,
        (sys.executable, str(WRAPPER), "--mark", str(marks), "--sleep", "300", "--", *INSTALLER.command),
    )
    settings = make_settings(
        volume, write_requirements(volume, wheelhouse), installer=stalled, install_timeout=3.0
    )

    with pytest.raises(BootstrapError, match="took over 3 s"):
        volume_env.ensure_built(settings)

    [mark] = marks.iterdir()
    with pytest.raises(ProcessLookupError):
        os.kill(int(mark.name), 0)
    assert builds(settings) == []


def test_an_installer_that_cannot_start_is_a_bootstrap_error(volume: Path, wheelhouse: Path) -> None:
    missing = volume_env.Installer("pip", (str(volume / "no-such-installer"),))
    settings = make_settings(volume, write_requirements(volume, wheelhouse), installer=missing)

    with pytest.raises(BootstrapError, match="install step could not start"):
        volume_env.ensure_built(settings)

    assert builds(settings) == []


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


def test_a_hub_model_is_fetched_into_hf_home_once(
    volume: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch, isolated_process: None
) -> None:
    settings = make_settings(
        volume,
        write_requirements(volume, wheelhouse, "huggingface_hub==0.0.1"),
        model="nvidia/parakeet-tdt-0.6b-v3",
    )

    volume_env.ensure_environment(settings=settings)

    cached = settings.hf_home / "hub" / "models--nvidia--parakeet-tdt-0.6b-v3" / "snapshots" / "test"
    assert (cached / "parakeet-tdt-0.6b-v3.nemo").read_bytes() == b"weights of nvidia/parakeet-tdt-0.6b-v3"
    assert os.environ["HF_HOME"] == str(settings.hf_home)
    refuse_processes(monkeypatch)
    volume_env.ensure_model(settings, volume_env.find_ready(settings))


def test_a_nemo_file_model_fetches_nothing(volume: Path, wheelhouse: Path, isolated_process: None) -> None:
    settings = make_settings(volume, write_requirements(volume, wheelhouse))

    volume_env.ensure_environment(settings=settings)

    assert not settings.hf_home.exists()
    assert not (settings.root / layout.MODELS_DIR).exists()


def test_skipped_when_this_interpreter_already_imports_nemo(volume: Path) -> None:
    assert importlib.util.find_spec("nemo") is not None  # the development environment has NeMo
    settings = make_settings(volume, volume / "missing.txt", skip_if_nemo_importable=True)

    assert volume_env.ensure_environment(settings=settings) is None
    assert not settings.root.exists()


def test_a_held_lock_is_waited_for_with_reports_then_given_up(
    volume: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "BOOTSTRAP_REPORT_EVERY_SECONDS", 0.1)
    settings = make_settings(volume, write_requirements(volume, wheelhouse), lock_timeout=0.5)
    directory = spec_dir(settings)
    directory.mkdir(parents=True)
    holder = os.open(directory / layout.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    messages: list[str] = []
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        info = {"host": "stuck-worker", "pid": 4242, "started_at": "2025-01-01T00:00:00+00:00"}
        os.write(holder, json.dumps(info).encode())

        env = volume_env.ensure_built(settings, messages.append)
    finally:
        os.close(holder)

    assert volume_env.find_ready(settings) == env
    log = volume_log(settings)
    assert "waiting for building the environment held by stuck-worker pid 4242" in log
    assert "going on without the lock" in log
    assert any(message.startswith("Waiting for another worker") for message in messages)


def test_a_missing_volume_is_reported_not_created() -> None:
    missing = Path(tempfile.gettempdir()) / f"no-volume-{socket.gethostname()}-{os.getpid()}"
    assert not missing.exists()
    settings = make_settings(missing, REPO_ROOT / "requirements-volume.txt")

    with pytest.raises(BootstrapError, match="not mounted"):
        volume_env.ensure_built(settings)

    assert not missing.exists()
