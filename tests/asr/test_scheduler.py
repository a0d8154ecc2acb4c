"""The model scheduler (`utils.asr.scheduler`): device tasks run on its thread and leave with their job."""

import threading

import pytest

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
