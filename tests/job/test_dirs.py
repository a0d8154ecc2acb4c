"""Per-job and per-process temporary directories (`utils.job.dirs`): the start-up sweep of dead ones, and
library temp files kept in the worker's own directory."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

import config
from tests.support.media import b64, float_wav, speech
from tests.support.worker import job_queue, start_worker_loop, stop_worker
from utils.job import dirs

WORDS = "one two three four five six seven eight nine zero"


def test_job_directories_of_dead_processes_are_removed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "TEMP_ROOT", tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = dirs._host()
    stale = tmp_path / f"{config.JOB_DIR_PREFIX}{host}-{dead.pid}-abc"
    running = tmp_path / f"{config.JOB_DIR_PREFIX}{host}-{os.getpid()}-def"
    elsewhere = tmp_path / f"{config.JOB_DIR_PREFIX}other-host-{dead.pid}-ghi"
    unrelated = tmp_path / "someone-elses-dir"
    for directory in (stale, running, elsewhere, unrelated):
        directory.mkdir()
        (directory / "source-1.mp3").write_bytes(b"x")
    with dirs.job_directory() as fresh:
        assert Path(fresh).name.startswith(f"{config.JOB_DIR_PREFIX}{host}-{os.getpid()}-")
        assert dirs.remove_stale() == [stale]
        assert Path(fresh).is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (running, elsewhere, unrelated)
    )


def test_library_temp_files_stay_in_the_workers_own_directory_and_leave_with_it(tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    float_wav(speech(WORDS), clip)
    with job_queue([{"id": "job-1", "input": {"audio_base64": b64(clip)}}]) as queue:
        worker = start_worker_loop(queue, tmp_path)
        try:
            assert queue.done.wait(timeout=120), "the worker posted no result"
            own = [p for p in tmp_path.iterdir() if p.name.startswith(config.JOB_DIR_PREFIX)]
            assert [p.name.split("-")[-2] for p in own] == ["process"]
        finally:
            output = stop_worker(worker)
    final = [post["output"] for post in queue.posts if post.get("status") != "IN_PROGRESS"]
    assert [result["text"] for result in final] == [WORDS], output[-3000:]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(config.JOB_DIR_PREFIX)], output[-3000:]


def test_the_process_directory_becomes_the_temp_dir_of_libraries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "TEMP_ROOT", tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    monkeypatch.setenv("TMPDIR", os.environ.get("TMPDIR", "/tmp"))
    own = dirs.use_process_directory()  # removed at exit, like a worker's
    assert own.parent == tmp_path
    assert own.name.startswith(f"{config.JOB_DIR_PREFIX}{dirs._host()}-{os.getpid()}-process-")
    assert tempfile.gettempdir() == os.environ["TMPDIR"] == str(own)
    # torch's compile cache is one such library output.
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    assert Path(default_cache_dir()).parent == own
