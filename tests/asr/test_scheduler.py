"""The model scheduler (`utils.asr.scheduler`): device tasks run on its thread and leave with their job."""

import threading

import numpy as np
import pytest

import config
from tests.support.media import speech
from utils.asr import transcribe
from utils.asr.plans import WINDOWED
from utils.asr.scheduler import scheduler
from utils.errors import JobTimeoutError
from utils.job.deadline import Deadline


def test_device_tasks_run_on_the_scheduler_thread_and_leave_with_their_job() -> None:
    ran = scheduler.run_task(lambda: threading.current_thread().name, Deadline(60)).result(timeout=30)
    assert ran == "asr-scheduler"
    failing = scheduler.run_task(lambda: 1 / 0, Deadline(60))
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=30)
    # The thread lives on for the next job's work.
    assert scheduler.run_task(lambda: "next", Deadline(60)).result(timeout=30) == "next"
    # A task whose job ran out of time is dropped, never run.
    late = scheduler.run_task(lambda: pytest.fail("ran"), Deadline(0))
    with pytest.raises(JobTimeoutError, match="did not finish within 0 s"):
        late.result(timeout=30)


def test_live_steps_go_before_waiting_file_work_and_let_one_file_call_between_two_of_them() -> None:
    order: list[str] = []
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(30)

    held = scheduler.run_task(hold, Deadline(60))
    assert started.wait(30)
    # Queued while the thread is busy: file work first, then live steps.
    files = [scheduler.run_task(lambda i=i: order.append(f"file {i}"), Deadline(60)) for i in range(2)]
    lives = [scheduler.run_live(lambda i=i: order.append(f"live {i}")) for i in range(3)]
    release.set()
    for future in [held, *files, *lives]:
        future.result(timeout=30)
    assert order == ["live 0", "file 0", "live 1", "file 1", "live 2"]
    # A live step's failure goes to its future; the thread lives on.
    with pytest.raises(ZeroDivisionError):
        scheduler.run_live(lambda: 1 / 0).result(timeout=30)
    assert scheduler.run_live(lambda: threading.current_thread().name).result(timeout=30) == "asr-scheduler"


def test_while_live_sessions_are_open_file_calls_are_kept_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "LIVE_FILE_CALL_SECONDS", 8.0)
    audio = np.concatenate([speech("seven one four two nine eight three five zero six")] * 5)  # about 22 s
    order: list[str] = []

    def progress(message: str) -> None:
        order.append(message)
        if message.startswith("window 1/"):
            # A live step that arrives while a file item runs waits for one short call only.
            scheduler.run_live(lambda: order.append("live"))

    scheduler.hold_live()
    try:
        shortened = scheduler.submit(audio, frozenset({"word"}), Deadline(120), progress).result(timeout=120)
    finally:
        scheduler.release_live()
    assert shortened.attention == WINDOWED
    assert shortened.windows == len(transcribe.window_plan(audio.size, 8.0)) >= 3
    assert order[:3] == [f"window 1/{shortened.windows} done", "live", f"window 2/{shortened.windows} done"]
    # With no live session open, the same item is one call again.
    whole = scheduler.submit(audio, frozenset({"word"}), Deadline(120), lambda _: None).result(timeout=120)
    assert whole.attention != WINDOWED
    assert whole.text.split() == shortened.text.split()
