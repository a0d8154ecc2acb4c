"""A soak through the SDK's local API (`handler.py --rp_serve_api`): 200 mixed jobs, one worker process.

Good jobs (short spoken digits) and bad ones (invalid base64, a text file, an unknown field, an ftp://
URL, a video without sound) alternate. Every answer has the right shape and content, and the worker
does not accumulate anything: temp files, resident memory, file descriptors, child processes (ffmpeg).
"""

import base64
import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

import config
from tests.support import worker
from tools import synth

JOBS = 200
BASELINE_JOB = 20  # by then every lazy import, the model and the allocator's pools are warm
MAX_RSS_GROWTH = 0.10
REQUEST_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Job:
    """One soak job and what its answer must say."""

    name: str
    input: dict[str, Any]
    words: str | None = None  # a good job's transcript
    error: str | None = None  # a phrase of a bad job's error message


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


@pytest.fixture(scope="module")
def job_kinds(tmp_path_factory: pytest.TempPathFactory) -> list[Job]:
    """The jobs the soak cycles through, each input encoded once."""
    directory = tmp_path_factory.mktemp("soak-inputs")
    good = []
    for words, name, codec in [
        ("one two", "a.ogg", ("-c:a", "libvorbis")),
        ("seven", "b.mp3", ("-c:a", "libmp3lame")),
        ("five nine three", "c.flac", ()),
    ]:
        pad = np.zeros(int(0.2 * config.SAMPLE_RATE), dtype=np.float32)
        wav = directory / f"{name}.wav"
        synth.write_wav(wav, np.concatenate([pad, synth.synthesize(words), pad]))
        ffmpeg("-i", str(wav), *codec, str(directory / name))
        good.append(Job(f"good-{name}", {"audio_base64": b64(directory / name)}, words=words))
    video = directory / "video-only.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=32x32:rate=5", "-pix_fmt", "yuv420p", str(video))
    text = base64.b64encode(b"just a text file, not audio\n" * 40).decode()
    bad = [
        Job(
            "invalid-base64", {"audio_base64": "@@@@ not base64 !!"}, error="audio_base64 is not valid base64"
        ),
        Job("text-bytes", {"audio_base64": text}, error="could not be decoded as audio"),
        Job("unknown-field", {"audio_base64": text, "languge": "en"}, error="languge"),
        Job("ftp-url", {"audio_url": "ftp://example.com/a.mp3"}, error="scheme 'ftp' is not allowed"),
        Job("video-only", {"audio_base64": b64(video)}, error="no audio stream"),
    ]
    # Good and bad interleaved, so that every kind of failure is followed by a good job at some point.
    return [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], bad[4]]


@dataclass
class LocalApi:
    """The running worker: its process, a connection to it, and its temp root."""

    process: subprocess.Popen
    connection: http.client.HTTPConnection
    temp_root: Path

    def runsync(self, job_input: dict[str, Any]) -> dict[str, Any]:
        """POSTs one job to /runsync and returns the JSON answer."""
        body = json.dumps({"input": job_input})
        self.connection.request("POST", "/runsync", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        assert response.status == 200, payload[:500]
        return json.loads(payload)


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """Runs `python handler.py --rp_serve_api` on 127.0.0.1 with the bundled model; kills it at the end."""
    temp_root = tmp_path_factory.mktemp("soak-temp")
    log_path = tmp_path_factory.mktemp("soak-log") / "server.log"
    with worker.local_api(log_path, PARAKEET_TEMP_DIR=str(temp_root)) as api:
        port = int(api.url.rpartition(":")[2])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            yield LocalApi(api.process, connection, temp_root)
        finally:
            connection.close()


@dataclass(frozen=True)
class Usage:
    """What a worker process holds."""

    rss_bytes: int
    open_fds: int
    children: int
    # The long-lived decoder helpers, counted apart: they are meant to outlive jobs.
    helpers: int


def usage(pid: int) -> Usage:
    """Reads the process's resident memory (VmRSS), open descriptors and child processes."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    children = psutil.Process(pid).children(recursive=True)
    helpers = sum("utils.audio.helper" in " ".join(child.cmdline()) for child in children)
    return Usage(rss_kib * 1024, len(os.listdir(f"/proc/{pid}/fd")), len(children) - helpers, helpers)


def check_answer(job: Job, answer: dict[str, Any]) -> None:
    """The local API's answer for one job, as the SDK really shapes it."""
    if job.words is not None:
        assert answer["status"] == "COMPLETED", answer
        assert answer["output"]["success"] is True
        assert answer["output"]["text"] == job.words
        return
    # The SDK takes the handler's `error` to the top level and marks the job FAILED; the local API then
    # answers with the error alone (the rest of the handler's dict, error_type included, is dropped).
    assert set(answer) == {"id", "status", "error"}, answer
    assert answer["status"] == "FAILED"
    assert job.error in answer["error"], (job.name, answer["error"])
    assert len(answer["error"].splitlines()) == 1


def test_200_mixed_jobs_leave_the_worker_as_they_found_it(local_api: LocalApi, job_kinds: list[Job]) -> None:
    pid = local_api.process.pid
    snapshots: dict[int, Usage] = {}
    for number in range(1, JOBS + 1):
        job = job_kinds[(number - 1) % len(job_kinds)]
        check_answer(job, local_api.runsync(job.input))
        # Only the worker's own directory stays, holding torch's cache and nothing of any job.
        [own] = local_api.temp_root.iterdir()
        assert f"-{pid}-process-" in own.name, f"job {number} ({job.name}) left files behind"
        left = [entry.name for entry in own.iterdir() if not entry.name.startswith("torchinductor_")]
        assert left == [], f"job {number} ({job.name}) left files behind"
        current = usage(pid)
        assert current.children == 0, f"a child process outlived job {number} ({job.name})"
        assert current.helpers <= config.DECODER_HELPERS, f"decoder helpers piled up by job {number}"
        snapshots[number] = current
    baseline, last = snapshots[BASELINE_JOB], snapshots[JOBS]
    print(f"after job {BASELINE_JOB}: {baseline}; after job {JOBS}: {last}")
    # Growth is the leak; memory handed back to the system is not.
    assert last.rss_bytes <= baseline.rss_bytes * (1 + MAX_RSS_GROWTH), (baseline, last)
    assert max(snapshot.open_fds for number, snapshot in snapshots.items() if number >= BASELINE_JOB) <= (
        baseline.open_fds
    ), [snapshots[number].open_fds for number in range(BASELINE_JOB, JOBS + 1)]
    assert local_api.process.poll() is None, "the worker died"
