"""config.py read as the worker starts: each variable within its bounds, and the rules between variables,
each failure naming the variable (or both) and what is allowed."""

import subprocess
import sys

import pytest

import config
from tools.reference import defaults_environment


def start_with(**variables: str) -> subprocess.CompletedProcess[str]:
    """Imports config in a fresh interpreter with these variables set (and no other declared one)."""
    environment = defaults_environment()
    return subprocess.run(
        [sys.executable, "-c", "import config"],
        cwd=config.REPO_ROOT,
        env={**environment, **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refusal(**variables: str) -> str:
    """The ConfigError line a start with these variables ends in."""
    started = start_with(**variables)
    assert started.returncode != 0, "config accepted the values"
    return started.stderr.strip().splitlines()[-1]


def test_the_defaults_start() -> None:
    assert start_with().returncode == 0


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SPEAKER_ACTIVITY_THRESHOLD": "5"}, "SPEAKER_ACTIVITY_THRESHOLD must be at most 1, got '5'"),
        ({"SPEAKER_ACTIVITY_THRESHOLD": "-0.1"}, "SPEAKER_ACTIVITY_THRESHOLD must be at least 0, got '-0.1'"),
        ({"SUBTITLE_MAX_LINES": "9"}, "SUBTITLE_MAX_LINES must be at most 5, got '9'"),
        ({"SUBTITLE_MAX_LINE_CHARS": "3"}, "SUBTITLE_MAX_LINE_CHARS must be at least 10, got '3'"),
        ({"BATCH_WAIT_MS": "5000"}, "BATCH_WAIT_MS must be at most 1000, got '5000'"),
        ({"BATCH_SIZE": "1e400"}, "BATCH_SIZE must be a whole number, got '1e400'"),
        ({"JOB_TIMEOUT_SECONDS": "inf"}, "JOB_TIMEOUT_SECONDS must be a finite number, got 'inf'"),
        ({"PARAKEET_DEVICE": "tpu"}, "PARAKEET_DEVICE must be one of auto, cuda, cpu, got 'tpu'"),
        (
            {"PRELOAD_DIARIZER": "maybe"},
            "PRELOAD_DIARIZER must be one of 1, true, yes, on, 0, false, no, off",
        ),
    ],
)
def test_a_value_out_of_its_bounds_is_refused_by_name(variables: dict[str, str], message: str) -> None:
    assert message in refusal(**variables)


@pytest.mark.parametrize(
    ("variables", "names"),
    [
        (
            {"WINDOW_SECONDS": "600", "WINDOW_OVERLAP_SECONDS": "900"},
            ("WINDOW_OVERLAP_SECONDS", "WINDOW_SECONDS"),
        ),
        ({"FALLBACK_WINDOW_SECONDS": "60"}, ("WINDOW_OVERLAP_SECONDS", "FALLBACK_WINDOW_SECONDS")),
        (
            {"FULL_ATTENTION_MAX_SECONDS": "20000"},
            ("FULL_ATTENTION_MAX_SECONDS", "LOCAL_ATTENTION_MAX_SECONDS"),
        ),
        ({"WINDOW_SECONDS": "20000"}, ("WINDOW_SECONDS", "LOCAL_ATTENTION_MAX_SECONDS")),
        (
            {"DOWNLOAD_CONNECT_TIMEOUT_SECONDS": "30", "DOWNLOAD_TIMEOUT_SECONDS": "20"},
            ("DOWNLOAD_CONNECT_TIMEOUT_SECONDS", "DOWNLOAD_TIMEOUT_SECONDS"),
        ),
        (
            {"MAX_JOB_AUDIO_SECONDS": "7200", "MAX_INFLIGHT_AUDIO_SECONDS": "3600"},
            ("MAX_JOB_AUDIO_SECONDS", "MAX_INFLIGHT_AUDIO_SECONDS"),
        ),
    ],
)
def test_a_rule_between_variables_is_refused_naming_both(
    variables: dict[str, str], names: tuple[str, str]
) -> None:
    line = refusal(**variables)
    assert line.startswith("config.ConfigError: ")
    assert all(name in line for name in names), line


def test_values_that_keep_the_rules_start() -> None:
    assert (
        start_with(
            WINDOW_SECONDS="600", WINDOW_OVERLAP_SECONDS="150", FALLBACK_WINDOW_SECONDS="600"
        ).returncode
        == 0
    )


def test_every_variable_is_declared_once_with_a_description() -> None:
    for name, variable in config.VARIABLES.items():
        assert variable.name == name
        assert variable.description.endswith((".", ")")), name
        assert variable.section, name
        if variable.minimum is not None and variable.maximum is not None:
            assert variable.minimum < variable.maximum, name
