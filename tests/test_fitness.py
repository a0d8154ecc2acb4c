"""Start-up fitness checks, alone and inside the RunPod SDK's real worker loop.

The worker-loop tests run `python -u handler.py` as RunPod does, with its job queue replaced by a small
job server on 127.0.0.1 (the SDK reads the queue's URLs from RUNPOD_WEBHOOK_* variables).
"""

import base64
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import config
from utils import fitness

SAMPLE = config.REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"


def test_all_checks_pass_on_a_healthy_machine() -> None:
    for check in fitness.CHECKS:
        check()


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
    fitness.check_volume_writable()


def without_nemo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes NeMo look absent, as in the small container image (it cannot be uninstalled mid-test)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nemo" else real(name, *a)
    )


def test_environment_without_nemo_or_volume_is_unfit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_nemo(monkeypatch)
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path / "not-mounted")
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", tmp_path / "not-mounted" / "Parakeet")
    with pytest.raises(fitness.UnfitError, match="no volume is mounted"):
        fitness.check_environment()


def test_environment_buildable_on_a_mounted_volume(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_nemo(monkeypatch)
    monkeypatch.setattr(config, "VOLUME_ROOT", tmp_path)
    monkeypatch.setattr(config, "BOOTSTRAP_ROOT", tmp_path / "Parakeet")
    fitness.check_environment()


def test_cuda_asked_for_without_a_gpu_is_unfit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEVICE", "cuda")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(fitness.UnfitError, match="no NVIDIA GPU"):
        fitness.check_gpu_expected()


class JobQueue(ThreadingHTTPServer):
    """RunPod's job queue in miniature: hands out queued jobs once, records what the worker posts."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), QueueRequestHandler)
        self.jobs = jobs
        self.posts: list[dict[str, Any]] = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class QueueRequestHandler(BaseHTTPRequestHandler):
    server: JobQueue

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            job = self.server.jobs.pop(0) if self.path.startswith("/job-take/") and self.server.jobs else None
        if job is None:
            self.send_response(204)
            self.end_headers()
            return
        body = json.dumps(job).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.posts.append(payload)
            if "IN_PROGRESS" != payload.get("status"):
                self.server.done.set()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def queue() -> Iterator[JobQueue]:
    job = {"id": "job-1", "input": {"audio_base64": base64.b64encode(SAMPLE.read_bytes()).decode()}}
    server = JobQueue([job])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def start_worker(queue: JobQueue, tmp_path: Path, **env: str) -> subprocess.Popen:
    """Starts `python -u handler.py` as RunPod does, pointed at the local queue."""
    environment = {
        **os.environ,
        "RUNPOD_POD_ID": "worker-under-test",
        "RUNPOD_WEBHOOK_GET_JOB": queue.url("/job-take/$ID?gpu=test"),
        "RUNPOD_WEBHOOK_POST_OUTPUT": queue.url("/job-done/$RUNPOD_POD_ID/$ID?gpu=test"),
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_VOLUME_PATH": str(tmp_path / "no-volume"),
        "PARAKEET_TEMP_DIR": str(tmp_path),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-u", "handler.py"],
        cwd=config.REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_worker_loop_runs_a_queued_job_and_posts_the_result(queue: JobQueue, tmp_path: Path) -> None:
    worker = start_worker(queue, tmp_path)
    try:
        assert queue.done.wait(timeout=120), "the worker posted no result"
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
    worker = start_worker(queue, tmp_path, FFMPEG_BINARY="/nonexistent/ffmpeg")
    try:
        output = worker.communicate(timeout=60)[0]
    finally:
        worker.kill()
    assert worker.returncode == 1, output
    assert "ffmpeg" in output
    assert len(queue.jobs) == 1, "the unfit worker took a job"
