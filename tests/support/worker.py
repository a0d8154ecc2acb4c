"""Starting `handler.py` the ways RunPod does, on 127.0.0.1 only: the SDK's local API and its real
worker loop against a local job queue; and `server.py`, the HTTP server.

Every worker a test or benchmark starts gets its environment from `worker_environment`, which sets
`RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true`: the SDK's automatic start-up checks would otherwise open a
connection to a public DNS resolver, and tests send no traffic beyond loopback.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import config
from tests.support.serving import serving

SERVER_START_SECONDS = 60


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_environment(**overrides: str) -> dict[str, str]:
    """The environment of a worker process: the bundled model, offline, no RunPod endpoints.

    The test's own RUNPOD_* variables are dropped (with them the SDK would call RunPod's webhooks
    instead of staying local); the caller adds the ones it means.

    Args:
        overrides: Variables to set on top.

    Returns:
        The environment.
    """
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RUNPOD_")}
    environment.update(
        PARAKEET_MODEL=str(config.BUNDLED_TEST_MODEL),
        HF_HUB_OFFLINE="1",
        RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="true",
        RUNPOD_LOG_LEVEL="INFO",
        UVICORN_LOG_LEVEL="warning",
    )
    environment.update(overrides)
    return environment


def _stop(process: subprocess.Popen) -> None:
    """Ends a worker process, by force if it does not stop within seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _launch(arguments: list[str], log_path: Path, environment: dict[str, str]) -> subprocess.Popen:
    """Starts `python <arguments>` from the repository root, its output (both streams) into `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, *arguments],
            cwd=config.REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@dataclass(frozen=True)
class RunningApi:
    """A worker serving the SDK's local API."""

    url: str
    process: subprocess.Popen


@contextmanager
def local_api(log_path: Path, **env: str) -> Iterator[RunningApi]:
    """Runs `python handler.py --rp_serve_api` on 127.0.0.1 until the block ends.

    Args:
        log_path: Where the server's output goes.
        env: Extra environment variables for the worker.

    Yields:
        The API's base URL and process, once it answers.
    """
    port = free_port()
    arguments = ["handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    process = _launch(arguments, log_path, worker_environment(**env))
    try:
        started = time.monotonic()
        while True:
            assert process.poll() is None, f"the local API exited early:\n{log_path.read_text()[-3000:]}"
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                # The SDK serves its API docs at "/": any answer means uvicorn is up.
                connection.request("GET", "/")
                connection.getresponse().read()
                break
            except OSError:
                assert time.monotonic() - started < SERVER_START_SECONDS, (
                    f"the local API did not start:\n{log_path.read_text()[-3000:]}"
                )
                time.sleep(0.2)
            finally:
                connection.close()
        yield RunningApi(f"http://127.0.0.1:{port}", process)
    finally:
        _stop(process)


@dataclass(frozen=True)
class RunningHttpServer:
    """`python server.py` serving on 127.0.0.1."""

    url: str
    port: int
    health_port: int
    process: subprocess.Popen


def ping(port: int) -> int | None:
    """GET /ping on 127.0.0.1:`port`; None while nothing answers there."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


@contextmanager
def http_server_process(log_path: Path, **env: str) -> Iterator[RunningHttpServer]:
    """Runs `python server.py` on 127.0.0.1 (API and health ports apart) until the block ends.

    Args:
        log_path: Where the server's output goes.
        env: Extra environment variables for the server.

    Yields:
        The server, once /ping answers (it may still be starting).
    """
    port, health_port = free_port(), free_port()
    ports = {"HOST": "127.0.0.1", "PORT": str(port), "PORT_HEALTH": str(health_port)}
    process = _launch(["server.py"], log_path, worker_environment(**{**ports, **env}))
    try:
        started = time.monotonic()
        while ping(health_port) is None:
            assert process.poll() is None, f"the server exited early:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() - started < SERVER_START_SECONDS, (
                f"the server did not start:\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.05)
        yield RunningHttpServer(f"http://127.0.0.1:{port}", port, health_port, process)
    finally:
        _stop(process)


class JobQueue(ThreadingHTTPServer):
    """RunPod's job queue in miniature: hands out queued jobs once, records what the worker posts.

    It answers the SDK's single take (`/job-take/…`) and batch take (`/job-take-batch/…&batch_size=N`),
    and its stop channel (`/job-stop/…`, 204).
    """

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _QueueRequestHandler)
        self.jobs = list(jobs)
        self.posts: list[dict[str, Any]] = []
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.expected = len(self.jobs)
        # When each job was handed out and answered (time.monotonic), by job id.
        self.taken_at: dict[str, float] = {}
        self.answered_at: dict[str, float] = {}

    def url(self, path: str) -> str:
        """The queue's URL for `path`."""
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def finished(self) -> list[dict[str, Any]]:
        """The final posts (not progress updates) received so far."""
        with self.lock:
            return [post for post in self.posts if post.get("status") != "IN_PROGRESS"]


class _QueueRequestHandler(BaseHTTPRequestHandler):
    server: JobQueue

    def log_message(self, *args: Any) -> None:
        pass

    def _send_json(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _no_content(self) -> None:
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.startswith("/job-take-batch/"):
            size = int(self.path.rpartition("batch_size=")[2].split("&")[0] or 1)
            with self.server.lock:
                taken, self.server.jobs = self.server.jobs[:size], self.server.jobs[size:]
                self._record_taken(taken)
            return self._send_json(taken) if taken else self._no_content()
        if self.path.startswith("/job-take/"):
            with self.server.lock:
                job = self.server.jobs.pop(0) if self.server.jobs else None
                self._record_taken([job] if job else [])
            return self._send_json(job) if job is not None else self._no_content()
        return self._no_content()  # /job-stop/ and anything else

    def _record_taken(self, jobs: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for job in jobs:
            self.server.taken_at[job["id"]] = now

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with self.server.lock:
            self.server.posts.append(payload)
            if payload.get("status") != "IN_PROGRESS":
                # /job-done/<pod>/<job id>?…
                job_id = self.path.split("?")[0].split("/")[3]
                payload["id"] = job_id
                self.server.answered_at.setdefault(job_id, time.monotonic())
            finals = [post for post in self.server.posts if post.get("status") != "IN_PROGRESS"]
            if len(finals) >= self.server.expected:
                self.server.done.set()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def job_queue(jobs: list[dict[str, Any]]) -> Iterator[JobQueue]:
    """Serves a `JobQueue` on 127.0.0.1 until the block ends.

    Args:
        jobs: The queued jobs (`{"id", "input"}`).

    Yields:
        The running queue.
    """
    with serving(JobQueue(jobs)) as server:
        yield server


def start_worker_loop(queue: JobQueue, temp_dir: Path, **env: str) -> subprocess.Popen:
    """Starts `python -u handler.py` as RunPod does, taking jobs from `queue`.

    Args:
        queue: The local job queue.
        temp_dir: The worker's PARAKEET_TEMP_DIR (and a volume path that does not exist under it).
        env: Extra environment variables.

    Returns:
        The worker process (stdout and stderr together, as text).
    """
    environment = worker_environment(
        RUNPOD_POD_ID="worker-under-test",
        RUNPOD_WEBHOOK_GET_JOB=queue.url("/job-take/$ID?gpu=test"),
        RUNPOD_WEBHOOK_POST_OUTPUT=queue.url("/job-done/$RUNPOD_POD_ID/$ID?gpu=test"),
        RUNPOD_SKIP_GPU_CHECK="true",
        RUNPOD_VOLUME_PATH=str(temp_dir / "no-volume"),
        PARAKEET_TEMP_DIR=str(temp_dir),
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-u", "handler.py"],
        cwd=config.REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_worker(process: subprocess.Popen) -> str:
    """Stops a worker started by `start_worker_loop` and returns its output.

    Args:
        process: The worker.

    Returns:
        Everything it printed.
    """
    if process.poll() is None:
        _stop(process)
    return process.stdout.read() if process.stdout else ""
