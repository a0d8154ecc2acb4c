"""The server's readiness follows its start-up and GPU failures."""

import pytest

from utils.errors import ModelLoadError
from utils.fitness import UnfitError
from utils.http.readiness import FAILED, HEALTHY, STARTING, Readiness


def test_a_successful_load_makes_it_healthy() -> None:
    state = Readiness()
    assert state.state == STARTING
    state.start(lambda: None).join()
    assert state.state == HEALTHY


def test_a_failed_load_makes_it_failed_and_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    for failure in (
        ModelLoadError("could not load the model"),
        UnfitError("ffmpeg is missing"),
        KeyError("x"),
    ):
        state = Readiness()

        def load(failure: Exception = failure) -> None:
            raise failure

        state.start(load).join()
        assert state.state == FAILED
    assert "could not load the model" in caplog.text
    assert "ffmpeg is missing" in caplog.text


def test_a_gpu_failure_is_for_good() -> None:
    state = Readiness()
    state.start(lambda: None).join()
    state.fail("an unrecoverable GPU error")
    assert state.state == FAILED
    state.start(lambda: None).join()  # a load that succeeds later does not make it healthy again
    assert state.state == FAILED
