"""Start-up fitness checks, alone and inside the RunPod SDK's real worker loop.

The worker-loop tests run `python -u handler.py` as RunPod does, with its job queue replaced by a small
job server on 127.0.0.1 (the SDK reads the queue's URLs from RUNPOD_WEBHOOK_* variables).
"""

import base64
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import config
from tests.support.worker import JobQueue, job_queue, start_worker_loop, stop_worker, worker_environment
from utils import fitness

SAMPLE = config.REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"


def test_all_checks_pass_on_a_healthy_machine() -> None:
    found = [check() for check in fitness.CHECKS]
    assert found[0].startswith("ffmpeg version")
    assert found[2] == "NeMo importable"  # the development environment has NeMo
    assert all(isinstance(line, str) and line for line in found)


def test_missing_ffmpeg_is_unfit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "FFMPEG_BINARY", "/nonexistent/ffmpeg")
    with pytest.raises(fitness.UnfitError, match="ffmpeg"):
        fitness.check_ffmpeg()


def test_unwritable_volume_is_unfit(monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc is a real directory nobody can create files in (root included, unlike a chmod'ed one).
    monkeypatch.setattr(config, "VOLUME_ROOT", Path("/proc"))
    with pytest.raises(fitness.UnfitError, match="not writable"):
        fitness.check_volume_writable()


def test_absent_volume_is_fine_for_writability(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path / "not-mounted")
    assert fitness.check_volume_writable() == "no volume mounted"
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path)
    assert fitness.check_volume_writable() == "volume writable"


def without_nemo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes NeMo look absent, as in the small container image (it cannot be uninstalled mid-test)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nemo" else real(name, *a)
    )


def test_environment_without_nemo_or_volume_is_built_on_the_containers_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_nemo(monkeypatch)
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path / "not-mounted")
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", None)
    monkeypatch.setattr(config, "CONTAINER_BOOTSTRAP_ROOT", tmp_path / "container" / "parakeet")
    (tmp_path / "container").mkdir()
    assert fitness.check_environment() in {
        f"environment buildable with {kind} on the container's disk, at every cold start"
        for kind in ("uv", "pip")
    }
    assert not (tmp_path / "container" / "parakeet").exists()  # a check changes nothing


def test_environment_root_on_a_missing_mount_is_unfit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_nemo(monkeypatch)
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path / "not-mounted")
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", tmp_path / "not-mounted" / "Parakeet")
    with pytest.raises(fitness.UnfitError, match="not-mounted does not exist"):
        fitness.check_environment()


def test_environment_buildable_on_a_mounted_volume(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_nemo(monkeypatch)
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path)
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", tmp_path / "Parakeet")
    assert fitness.check_environment() in {
        "volume environment buildable with uv",
        "volume environment buildable with pip",
    }


def test_cuda_asked_for_without_a_gpu_is_unfit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEVICE", "cuda")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(fitness.UnfitError, match="no NVIDIA GPU"):
        fitness.check_gpu_expected()


@pytest.fixture
def queue() -> Iterator[JobQueue]:
    job = {"id": "job-1", "input": {"audio_base64": base64.b64encode(SAMPLE.read_bytes()).decode()}}
    with job_queue([job]) as server:
        yield server


def test_the_worker_helper_keeps_the_sdk_from_its_public_resolver_check(tmp_path: Path) -> None:
    # The SDK's automatic start-up checks connect to a public DNS resolver unless this is set.
    assert worker_environment()["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] == "true"
    with job_queue([]) as server:
        worker = start_worker_loop(server, tmp_path)
        try:
            # Read once the new program runs (the file reads empty at the very start of a process).
            environment: list[bytes] = []
            started = time.monotonic()
            while len(environment) < 2 and worker.poll() is None and time.monotonic() - started < 10:
                environment = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
        finally:
            output = stop_worker(worker)
    assert b"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true" in environment, output[-3000:]


def test_worker_loop_runs_a_queued_job_and_posts_the_result(queue: JobQueue, tmp_path: Path) -> None:
    worker = start_worker_loop(queue, tmp_path)
    try:
        assert queue.done.wait(timeout=120), "the worker posted no result"
        # The SDK posts progress from a thread of its own, so it may land after the result.
        waited = time.monotonic()
        while (
            not any(p.get("status") == "IN_PROGRESS" for p in queue.posts) and time.monotonic() - waited < 10
        ):
            time.sleep(0.05)
    finally:
        worker.kill()
        output = worker.communicate()[0]
    final = [post for post in queue.posts if post.get("status") != "IN_PROGRESS"]
    assert len(final) == 1, output
    result = final[0]["output"]
    assert result["success"] is True
    assert result["text"] == "seven three nine two zero five"
    assert "fitness check" in output.lower()
    assert [p["output"] for p in queue.posts if p.get("status") == "IN_PROGRESS"] == ["1/1 items transcribed"]


def test_worker_with_a_failing_check_exits_before_taking_a_job(queue: JobQueue, tmp_path: Path) -> None:
    worker = start_worker_loop(queue, tmp_path, FFMPEG_BINARY="/nonexistent/ffmpeg")
    try:
        output = worker.communicate(timeout=60)[0]
    finally:
        worker.kill()
    assert worker.returncode == 1, output
    assert "ffmpeg" in output
    assert len(queue.jobs) == 1, "the unfit worker took a job"
