"""The model scheduler (`utils.asr.scheduler`): device tasks run on its thread and leave with their job;
on a CPU no model call takes more audio than its bound."""

import difflib
import threading

import numpy as np
import pytest

import config
from tests.support.media import speech
from tests.support.model_spy import ModelSpy
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
