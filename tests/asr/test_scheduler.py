"""The model scheduler (`utils.asr.scheduler`): device tasks run on its thread and leave with their job;
live steps go first; on a CPU, and while live sessions are open, no file call takes more audio than its
bound (the smaller when both hold)."""

import difflib
import threading

import numpy as np
import pytest

import config
from tests.support.media import speech
from tests.support.model_spy import ModelSpy
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
    monkeypatch.setattr(config, "CPU_MAX_CALL_SECONDS", 60.0)  # the live bound alone (this runs on a CPU)
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


def test_on_a_cpu_no_model_call_takes_more_than_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "CPU_MAX_CALL_SECONDS", 10.0)
    monkeypatch.setattr(config, "BATCH_WAIT_MS", 300.0)
    spy = ModelSpy(monkeypatch)
    gap = np.zeros(2 * config.SAMPLE_RATE, dtype=np.float32)
    phrases = ["one two three", "four five six", "seven eight nine"] * 2
    long = np.concatenate([part for phrase in phrases for part in (speech(phrase), gap)])
    short = speech("four two")
    assert long.size > 20 * config.SAMPLE_RATE  # three windows of 10 s at least
    deadline = Deadline(120)
    futures = [scheduler.submit(long, frozenset(), deadline, lambda message: None)]
    futures += [scheduler.submit(short, frozenset(), deadline, lambda message: None) for _ in range(12)]
    texts = [future.result(timeout=120).text for future in futures]
    assert texts[1:] == ["four two"] * 12
    # Windows of 10 s may cut a word at a seam: the text is the phrases, give or take a word.
    matcher = difflib.SequenceMatcher(None, texts[0].split(), " ".join(phrases).split())
    assert matcher.ratio() > 0.85, texts[0]
    assert spy.calls
    assert all(max(call) * len(call) <= 10 * config.SAMPLE_RATE for call in spy.calls), spy.calls
    assert sum(len(call) == 1 and call[0] > 5 * config.SAMPLE_RATE for call in spy.calls) >= 3  # windows


def test_a_file_call_takes_the_smaller_bound_of_the_cpu_and_the_live_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "CPU_MAX_CALL_SECONDS", 20.0)
    monkeypatch.setattr(config, "LIVE_FILE_CALL_SECONDS", 30.0)
    # The tests run on a CPU: its bound always holds, the live one only while sessions are open.
    assert transcribe.call_limit_seconds(None, live_open=False) == 20.0
    assert transcribe.call_limit_seconds(None, live_open=True) == 20.0
    monkeypatch.setattr(config, "LIVE_FILE_CALL_SECONDS", 8.0)
    assert transcribe.call_limit_seconds(None, live_open=True) == 8.0
    assert transcribe.call_limit_seconds(None, live_open=False) == 20.0
